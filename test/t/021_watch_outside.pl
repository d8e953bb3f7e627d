# Copyright: kabsd_fdw authors.  The watcher never follows a path out of
# the backlog root, even when the tree changed between an event and its
# handling: with the watcher stopped, a directory is made under
# topics/a, topics/a is renamed, and a link to a directory outside the
# root stands at topics/a, holding a directory of the same name.  The
# queued event names topics/a/x; resolved now, it leads outside.  Nothing
# outside is watched, and the backlog stays on inotify.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use KabsdWatch;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $backlog = "$tmp/backlog";
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
make_path("$backlog/topics/a", "$tmp/outside/x/deeper", map { "$tmp/outside/x/d$_" } 1 .. 40);

# a cap on watches that the outside directories would exceed
my $node = watcher_node('outside', "kabsd_fdw.watch_max_directories = 30\n");

sub query
{
	return $node->safe_psql('postgres', shift);
}

sub wait_for
{
	my ($sql, $what) = @_;
	ok($node->poll_query_until('postgres', $sql), $what);
}

# The inodes of the directories the watcher has inotify watches on.
sub watched_inodes
{
	my $pid = shift;
	my %ino;
	opendir(my $d, "/proc/$pid/fd") or die "could not list /proc/$pid/fd: $!";
	for my $fd (readdir $d)
	{
		next if $fd =~ /^\./;
		next unless (readlink("/proc/$pid/fd/$fd") // '') =~ /inotify/;
		open(my $fh, '<', "/proc/$pid/fdinfo/$fd") or next;
		while (<$fh>)
		{
			$ino{ hex($1) } = 1 if /inotify wd:\d+ ino:([0-9a-f]+)/;
		}
	}
	return \%ino;
}

query('CREATE EXTENSION kabsd_fdw');
query("SELECT kabsd_attach('$backlog', 'w', watch => true)");
wait_for("SELECT pending = 0 FROM kabsd_status('w')", 'the backlog is watched');
my $pid = query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'");
my $outside = (stat("$tmp/outside/x"))[1];
my $deeper = (stat("$tmp/outside/x/deeper"))[1];
ok(!watched_inodes($pid)->{$outside}, 'before: nothing outside the root is watched');

my $log = -s $node->logfile;
kill('STOP', $pid) or die "could not stop the watcher: $!";
mkdir("$backlog/topics/a/x") or die;
rename("$backlog/topics/a", "$backlog/topics/a2") or die;
symlink("$tmp/outside", "$backlog/topics/a") or die;
kill('CONT', $pid) or die "could not continue the watcher: $!";
wait_for("SELECT pending = 0 FROM kabsd_status('w')", 'the events are handled');

my $w = watched_inodes($pid);
ok(!$w->{$outside}, 'a directory outside the root is not watched');
ok(!$w->{$deeper}, 'nor one below it');
ok(!$node->log_contains(qr/could not watch directory "\Q$tmp\E\/outside/, $log),
	'the watcher never tried to watch outside the root');
ok(!$node->log_contains(qr/watch limit|watch_max_directories/, $log), 'the backlog stays on inotify');
is(query("BEGIN; SELECT count(*) FROM w.files WHERE path LIKE 'topics/a/%'; ROLLBACK;"), '0',
	'the snapshot holds nothing from outside the root');

$node->stop;
done_testing();
