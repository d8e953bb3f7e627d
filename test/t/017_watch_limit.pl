# Copyright: kabsd_fdw authors.  kabsd_fdw.watch_max_directories: the
# watches the watcher holds, over all backlogs.  Two copies of the fixture
# backlog, the limit set between what the first needs and what both need:
# the first is watched with inotify, the second reaches the limit, says so
# in the server log and is polled; its edits still reach the snapshot,
# which is what a rebuild gives.  The limit raised by a reload, the second
# is watched with inotify again.
use strict;
use warnings;
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use KabsdWatch;

my $tmp = PostgreSQL::Test::Utils::tempdir();
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', "$tmp/$_") for qw(a b);
my $ndirs = 0;
find(sub { $ndirs++ if -d $_ }, "$tmp/a");
my $limit = $ndirs + 2;

my $node = watcher_node('limit', qq{
kabsd_fdw.watch_poll_interval_ms = 500
kabsd_fdw.watch_max_directories = $limit
log_min_messages = debug1
});
sub query { return $node->safe_psql('postgres', shift); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }

# Sets the state of task ALP-TSK-0001 in backlog $b's file.
sub set_state
{
	my ($b, $state) = @_;
	my $file = "$tmp/$b/products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md";
	my $text = slurp_file($file);
	$text =~ s/^state: .*$/state: $state/m or die 'no state';
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh $text;
	close($fh) or die "could not write $file: $!";
}

# The watcher's inotify instances.
sub inotify_instances
{
	my $pid = query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'");
	return scalar grep { (readlink($_) // '') =~ /inotify/ } glob("/proc/$pid/fd/*");
}

query('CREATE EXTENSION kabsd_fdw');
query(slurp_file('test/sql-include/snapshot.sql'));
my $log = -s $node->logfile;
query("SELECT kabsd_attach('$tmp/a', 'a', watch => true)");
wait_for("SELECT pending = 0 FROM kabsd_status('a')", "backlog a ($ndirs directories) is watched");
query("SELECT kabsd_attach('$tmp/b', 'b', watch => true)");
$node->wait_for_log(
	qr/LOG:  could not watch directory "[^"]*" of backlog "b"\n.*DETAIL:  The watcher holds kabsd_fdw.watch_max_directories \($limit\) watches already\. The backlog is refreshed every kabsd_fdw.watch_poll_interval_ms instead\.\n.*HINT:  Raise kabsd_fdw.watch_max_directories, then reload the configuration\./,
	$log);
ok(1, "watch_max_directories = $limit: backlog b reaches it, and the server log says so");
ok($node->log_contains(qr/full refresh of backlog "b"\n.*DETAIL:  The inotify watch limit was reached\./, $log),
	'the LOG line of a full refresh says the watch limit was reached');
ok(!$node->log_contains(qr/could not watch directory "[^"]*" of backlog "a"/, $log),
	'backlog a, watched first, is not affected');
is(inotify_instances(), 1, 'one inotify instance: backlog a\'s; b is polled');

# polled: edits still reach the snapshot, by walks on an interval
my $polls = query("SELECT count(*) FROM kabsd.refresh_history WHERE name = 'b' AND status = 'unchanged'");
wait_for("SELECT count(*) >= $polls + 2 FROM kabsd.refresh_history WHERE name = 'b' AND status = 'unchanged'",
	'backlog b is refreshed on an interval');
set_state('b', 'Polled');
wait_for("SELECT state = 'Polled' FROM b.items WHERE path ~ 'ALP-TSK-0001_'", 'an edit in b reaches the snapshot');
is(query("BEGIN; SELECT matches_rebuild('b'); ROLLBACK;"), 'same as a rebuild',
	'polled: the snapshot of b is what a rebuild gives');
set_state('a', 'Watched');
wait_for("SELECT state = 'Watched' FROM a.items WHERE path ~ 'ALP-TSK-0001_'", 'an edit in a reaches the snapshot');

# the limit raised: b is watched with inotify again
$log = -s $node->logfile;
query('ALTER SYSTEM SET kabsd_fdw.watch_max_directories = 0');
$node->reload;
$node->wait_for_log(
	qr/full refresh of backlog "b"\n.*DETAIL:  The configuration was reloaded: inotify is tried again\./, $log);
ok(1, 'the limit raised by a reload: inotify is tried again for b');
wait_for("SELECT pending = 0 FROM kabsd_status('b')", 'and b is refreshed');
is(inotify_instances(), 2, 'two inotify instances: b is watched with inotify again');
ok(!$node->log_contains(qr/could not watch directory/, $log), 'no limit is reached');
wait_for("SELECT count(*) = 0 FROM kabsd.refresh_history WHERE name = 'b' AND started_at > now() - interval '1 second'",
	'b is not polled any more');
$log = -s $node->logfile;
set_state('b', 'Inotify');
wait_for("SELECT state = 'Inotify' FROM b.items WHERE path ~ 'ALP-TSK-0001_'", 'an edit in b reaches the snapshot');
$node->wait_for_log(qr/refreshed backlog "b", 1 paths: products\/alpha\/items\/task\/0000\/ALP-TSK-0001_parse-frontmatter\.md/,
	$log);
ok(1, 'by its path, as inotify reported it');
is(query("BEGIN; SELECT matches_rebuild('b'); ROLLBACK;"), 'same as a rebuild',
	'inotify again: the snapshot of b is what a rebuild gives');

$node->stop;
done_testing();
