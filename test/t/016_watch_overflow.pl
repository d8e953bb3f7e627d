# Copyright: kabsd_fdw authors.  A real inotify queue overflow: the watcher
# is stopped (SIGSTOP) while more events than the kernel queues
# (fs.inotify.max_queued_events) are made: many files in watched
# directories, then an edit, a delete and a new directory whose events the
# full queue drops.  Continued, the watcher says the queue overflowed and
# walks the whole tree; the snapshot is then what a rebuild gives, and the
# directory made after the overflow is watched.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use KabsdWatch;

# The kernel's queue length: each file created and written below is three
# events (create, modify, close), so half as many files as events
# overflows it.
my $max_events = eval { slurp_file('/proc/sys/fs/inotify/max_queued_events') };
plan skip_all => 'fs.inotify.max_queued_events cannot be read'
  unless defined $max_events && $max_events =~ /^\s*(\d+)\s*$/;
$max_events = $1;
plan skip_all => "fs.inotify.max_queued_events is $max_events: overflowing it would take too many files"
  if $max_events > 200000;
my $nfiles = int($max_events / 2) + 1000;
my $per_dir = 1000;

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
my $tasks = "$backlog/products/alpha/items/task/0000";

my $node = watcher_node('overflow', "log_min_messages = debug1\n");
sub query { return $node->safe_psql('postgres', shift); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }

query('CREATE EXTENSION kabsd_fdw');
query(slurp_file('test/sql-include/snapshot.sql'));
query("SELECT kabsd_attach('$backlog', 'w', watch => true)");
wait_for("SELECT pending = 0 FROM kabsd_status('w')", 'watched, first refresh done');

# the flood's directories, watched: a stopped watcher adds no watches
my $ndirs = int(($nfiles - 1) / $per_dir) + 1;
my @dirs = map { sprintf('%s/products/flood/items/task/%04d', $backlog, $_) } 0 .. $ndirs - 1;
make_path(@dirs);
wait_for("SELECT pending = 0 AND NOT stale FROM kabsd_status('w')", 'the flood\'s directories are watched');

my $pid = query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'");
like($pid, qr/^\d+$/, 'the watcher is in pg_stat_activity');
my $log = -s $node->logfile;

kill('STOP', $pid) or die "could not stop the watcher: $!";
for my $i (0 .. $nfiles - 1)
{
	my $id = sprintf('FLD-TSK-%05d', $i);
	save_file("$dirs[$i / $per_dir]/${id}_flood.md", item($id, "Flood $i"));
}
# after it: the queue is full, these events are lost
my $text = slurp_file("$tasks/ALP-TSK-0001_parse-frontmatter.md");
$text =~ s/^state: .*$/state: Overflowed/m or die 'no state';
save_file("$tasks/ALP-TSK-0001_parse-frontmatter.md", $text);
unlink("$tasks/ALP-TSK-0003_duplicate-id.md") or die "could not delete: $!";
make_path("$backlog/products/late/items/task/0000");
save_file("$backlog/products/late/items/task/0000/LAT-TSK-0001_late.md", item('LAT-TSK-0001', 'Late'));
kill('CONT', $pid) or die "could not continue the watcher: $!";

$node->wait_for_log(qr/full refresh of backlog "w".*\n.*DETAIL:  The inotify event queue overflowed\./, $log);
ok(1, "$nfiles files made while the watcher was stopped: a LOG line says the queue overflowed and a full refresh follows");
wait_for("SELECT count(*) = $nfiles FROM w.items WHERE product = 'flood'", 'the flood is in the snapshot');
wait_for("SELECT state = 'Overflowed' FROM w.items WHERE path ~ 'ALP-TSK-0001_'",
	'an edit whose events were lost is in the snapshot');
wait_for("SELECT NOT stale AND pending = 0 FROM kabsd_status('w')", 'the snapshot settles');
is(query("SELECT count(*) FROM w.files WHERE path ~ 'ALP-TSK-0003'"), '0',
	'a delete whose events were lost is in the snapshot');
is(query("SELECT count(*) FROM w.items WHERE product = 'late'"), '1',
	'a directory whose events were lost is in the snapshot');
is(query("BEGIN; SELECT matches_rebuild('w'); ROLLBACK;"), 'same as a rebuild',
	'after the overflow, the snapshot is what a rebuild gives');

# the directory made after the overflow is watched, and so are the others:
# a new file in it, and one in a flood directory, are refreshed by path
$log = -s $node->logfile;
save_file("$dirs[-1]/FLD-TSK-99999_after.md", item('FLD-TSK-99999', 'After'));
save_file("$backlog/products/late/items/task/0000/LAT-TSK-0002_after.md", item('LAT-TSK-0002', 'After'));
wait_for("SELECT count(*) = 2 FROM w.items WHERE title = 'After'",
	'new files in a directory made after the overflow, and in one before, show in the snapshot');
ok(!$node->log_contains(qr/full refresh of backlog "w"/, $log),
	'they were refreshed by path: those directories are watched');

$node->stop;
done_testing();
