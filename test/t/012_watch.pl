# Copyright: kabsd_fdw authors.  The watcher: a background worker that
# refreshes a watched backlog as its files change.  A copy of the fixture
# backlog in a temporary directory is saved, added to, renamed, deleted,
# given a directory that is renamed and removed, written as editors write,
# moved away and back; the worker is terminated and comes back; watching
# is turned off and on; the polling mode is switched on.  After each change
# the snapshot is what a rebuild from the files gives.  Without the
# library preloaded, kabsd_watch() says what to configure.
use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use KabsdWatch;

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
my $tasks = "$backlog/products/alpha/items/task/0000";

# Without the watcher, kabsd_watch() refuses and says why.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
$plain->safe_psql('postgres', "SELECT status FROM kabsd_attach('$backlog', 'w')");
my ($ret, $out, $err) = $plain->psql('postgres', "SELECT kabsd_watch('w')");
like(
	$err,
	qr/ERROR:  the kabsd_fdw watcher does not run in database "postgres".*DETAIL:  kabsd_fdw is not in shared_preload_libraries\..*HINT:  Add kabsd_fdw to shared_preload_libraries and set kabsd_fdw\.watch_database to "postgres"/s,
	'without the library preloaded, kabsd_watch says what to configure');
is($plain->safe_psql('postgres', "SELECT watch FROM kabsd.backlogs WHERE name = 'w'"),
	'f', 'a refused kabsd_watch watches nothing');
$plain->stop;

my $node = watcher_node('watch', "log_min_messages = debug1\n");
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
$node->safe_psql('postgres', slurp_file('test/sql-include/snapshot.sql'));

sub query
{
	return $node->safe_psql('postgres', shift);
}

# Waits until the query returns t; fails the test with $what otherwise.
sub wait_for
{
	my ($sql, $what) = @_;
	ok($node->poll_query_until('postgres', $sql), $what);
}

# Rewrites a file in place with $from replaced by $to.
sub edit
{
	my ($file, $from, $to) = @_;
	my $text = slurp_file($file);
	$text =~ s/$from/$to/m or die "\"$from\" not found in $file";
	save_file($file, $text);
}

# The oracle: the snapshot against a rebuild from the files (rolled back).
sub same_as_rebuild
{
	my $what = shift;
	is(query("BEGIN; SELECT matches_rebuild('w'); ROLLBACK;"), 'same as a rebuild',
		"$what: the snapshot is what a rebuild gives");
}

my $watcher = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'";

# the worker runs, and says what it does
wait_for("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'the watcher is in pg_stat_activity');
is(query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher' AND datname = 'postgres'"),
	'1', 'the watcher is connected to kabsd_fdw.watch_database');

is(query("SELECT status FROM kabsd_attach('$backlog', 'w')"), 'rebuilt', 'attach');
my $log = -s $node->logfile;
query("SELECT kabsd_watch('w')");
is(query("SELECT watch FROM kabsd.backlogs WHERE name = 'w'"), 't', 'kabsd_watch sets watch');
wait_for("SELECT query = 'watching 1 backlogs' FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'the watcher says what it watches');
$node->wait_for_log(qr/full refresh of backlog "w".*\n.*DETAIL:  Watching began\./, $log);
ok(1, 'a backlog newly watched gets a full refresh, with a LOG line that says why');

# a save: the item's state edited in place, one path refreshed
$log = -s $node->logfile;
edit("$tasks/ALP-TSK-0001_parse-frontmatter.md", '^state: InProgress$', 'state: Done');
wait_for("SELECT state = 'Done' FROM w.items WHERE path ~ 'ALP-TSK-0001_'", 'a save shows in the snapshot');
$node->wait_for_log(
	qr/refreshed backlog "w", 1 paths: products\/alpha\/items\/task\/0000\/ALP-TSK-0001_parse-frontmatter\.md/,
	$log);
ok(!$node->log_contains(qr/full refresh of backlog/, $log), 'a save: only the saved path was refreshed');
same_as_rebuild('a save');

# a new file
save_file("$tasks/ALP-TSK-0009_added.md", item('ALP-TSK-0009', 'Added'));
wait_for("SELECT count(*) = 1 FROM w.items WHERE id = 'ALP-TSK-0009'", 'a new file shows in the snapshot');
same_as_rebuild('a new file');

# a rename
rename("$tasks/ALP-TSK-0002_null-id.md", "$tasks/ALP-TSK-0002_renamed.md") or die "could not rename: $!";
wait_for("SELECT count(*) FILTER (WHERE path ~ 'ALP-TSK-0002_renamed') = 1
	AND count(*) FILTER (WHERE path ~ 'ALP-TSK-0002_null-id') = 0 FROM w.files",
	'a rename shows in the snapshot');
same_as_rebuild('a rename');

# a delete
unlink("$tasks/ALP-TSK-0003_duplicate-id.md") or die "could not delete: $!";
wait_for("SELECT count(*) = 0 FROM w.files WHERE path ~ 'ALP-TSK-0003'", 'a delete shows in the snapshot');
same_as_rebuild('a delete');

# a new directory with an item in it, created at once
make_path("$backlog/products/gamma/items/task/0000");
save_file("$backlog/products/gamma/items/task/0000/GAM-TSK-0001_new.md", item('GAM-TSK-0001', 'Gamma'));
wait_for("SELECT count(*) = 1 FROM w.items WHERE product = 'gamma'", 'a new directory with an item shows');
same_as_rebuild('a new directory');

# an item added later in the new directory: it is watched
save_file("$backlog/products/gamma/items/task/0000/GAM-TSK-0002_later.md", item('GAM-TSK-0002', 'Later'));
wait_for("SELECT count(*) = 2 FROM w.items WHERE product = 'gamma'", 'a file in a new directory shows');

# the directory renamed: its old and new subtrees refreshed, its watches
# follow it
$log = -s $node->logfile;
rename("$backlog/products/gamma", "$backlog/products/delta") or die "could not rename: $!";
wait_for("SELECT count(*) FILTER (WHERE product = 'delta') = 2 AND count(*) FILTER (WHERE product = 'gamma') = 0
	FROM w.items", 'a directory renamed shows in the snapshot');
$node->wait_for_log(qr/refreshed backlog "w", 2 paths: products\/delta products\/gamma/, $log);
ok(1, 'a directory renamed: its two subtrees were refreshed');
same_as_rebuild('a directory renamed');
edit("$backlog/products/delta/items/task/0000/GAM-TSK-0001_new.md", '^title: Gamma$', 'title: Delta');
wait_for("SELECT title = 'Delta' FROM w.items WHERE id = 'GAM-TSK-0001'",
	'a save in the renamed directory shows');
same_as_rebuild('a save in a renamed directory');

# the directory removed
remove_tree("$backlog/products/delta");
wait_for("SELECT count(*) = 0 FROM w.files WHERE product IN ('gamma', 'delta')",
	'a directory removed shows in the snapshot');
same_as_rebuild('a directory removed');

# an editor's save: a swap file and a temporary file renamed over the item
$log = -s $node->logfile;
my $task5 = "$tasks/ALP-TSK-0005_crlf.md";
save_file("$tasks/.ALP-TSK-0005_crlf.md.swp", 'swap');
my $text = slurp_file($task5);
$text =~ s/^title: .*$/title: Saved by an editor\r/m or die 'no title';
save_file("$task5.tmp~", $text);
rename("$task5.tmp~", $task5) or die "could not rename: $!";
unlink("$tasks/.ALP-TSK-0005_crlf.md.swp");
wait_for("SELECT title = 'Saved by an editor' FROM w.items WHERE path ~ 'ALP-TSK-0005'",
	'an editor\'s write-to-temp-then-rename shows in the snapshot');
$node->wait_for_log(qr/refreshed backlog "w", 1 paths: products\/alpha\/items\/task\/0000\/ALP-TSK-0005_crlf\.md/,
	$log);
ok(1, 'an editor\'s save: the temporary and swap files are not refreshed');
same_as_rebuild('an editor\'s save');

# many files at once (as a checkout writes them): a few refreshes
my $refreshes = query("SELECT count(*) FROM kabsd.refresh_history WHERE name = 'w'");
make_path("$backlog/products/many/items/task/0000");
save_file("$backlog/products/many/items/task/0000/MNY-TSK-$_.md", item("MNY-TSK-$_", "Many $_"))
  for (1000 .. 1299);
wait_for("SELECT count(*) = 300 FROM w.items WHERE product = 'many'", '300 new files show in the snapshot');
cmp_ok(query("SELECT count(*) FROM kabsd.refresh_history WHERE name = 'w'") - $refreshes,
	'<=', 10, '300 new files: a few refreshes, not one per file');
same_as_rebuild('300 new files');

# the root moved away and back: a full refresh when it is back
$log = -s $node->logfile;
rename($backlog, "$backlog.away") or die "could not move the root: $!";
$node->wait_for_log(qr/root ".*" of backlog "w" was removed or moved/, $log);
edit("$backlog.away/products/alpha/items/story/0000/ALP-USR-0001_backlog-queries.md",
	'^title: .*$', 'title: Edited while away');
rename("$backlog.away", $backlog) or die "could not move the root back: $!";
$node->wait_for_log(qr/full refresh of backlog "w".*\n.*DETAIL:  Its root was created again\./, $log);
wait_for("SELECT title = 'Edited while away' FROM w.items WHERE id = 'ALP-USR-0001'",
	'a root moved away and back: the change made meanwhile shows');
same_as_rebuild('a root moved away and back');
edit("$tasks/ALP-TSK-0001_parse-frontmatter.md", '^state: Done$', 'state: Review');
wait_for("SELECT state = 'Review' FROM w.items WHERE path ~ 'ALP-TSK-0001_'",
	'a root back: it is watched again');

# the worker terminated: it comes back (bgw_restart_time) and catches up
# with a change made while it was down
my $pid = query($watcher);
$log = -s $node->logfile;
query("SELECT pg_terminate_backend($pid)");
wait_for("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'the watcher terminated is gone');
edit("$tasks/ALP-TSK-0001_parse-frontmatter.md", '^state: Review$', 'state: Blocked');
wait_for("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher' AND pid <> $pid",
	'the watcher comes back');
wait_for("SELECT state = 'Blocked' FROM w.items WHERE path ~ 'ALP-TSK-0001_'",
	'the watcher back catches up with a change made while it was down');
ok($node->log_contains(qr/full refresh of backlog "w".*\n.*DETAIL:  The watcher started\./, $log),
	'the watcher back: a full refresh, with a LOG line that says why');
same_as_rebuild('the watcher back');

# unwatched: edits are not refreshed; watched again, it catches up
query("SELECT kabsd_unwatch('w')");
wait_for("SELECT query = 'watching 0 backlogs' FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'kabsd_unwatch: the watcher lets it go');
my $sums = query("SELECT string_agg(sum, ',' ORDER BY t) FROM snapshot_sums('w')");
edit("$tasks/ALP-TSK-0001_parse-frontmatter.md", '^state: Blocked$', 'state: Unwatched');
# not an assertion on time: two seconds (twice the cap) in which nothing may happen
sleep(2);
is(query("SELECT string_agg(sum, ',' ORDER BY t) FROM snapshot_sums('w')"), $sums,
	'unwatched: an edit does not reach the snapshot');
query("SELECT kabsd_watch('w')");
wait_for("SELECT state = 'Unwatched' FROM w.items WHERE path ~ 'ALP-TSK-0001_'",
	'watched again: the snapshot catches up');
same_as_rebuild('watched again');

# idle: no transaction and no snapshot held (VACUUM is never held back),
# and no wake-up while nothing changes (its voluntary context switches
# stay put; not an assertion on time, two seconds in which none may come)
wait_for("SELECT pending = 0 FROM kabsd_status('w')", 'idle: nothing pending');
wait_for("SELECT xact_start IS NULL AND backend_xmin IS NULL AND backend_xid IS NULL
	FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'idle: the watcher holds no transaction and no snapshot');
my $idle_pid = query($watcher);
my $switches = sub {
	return (slurp_file("/proc/$idle_pid/status") =~ /^voluntary_ctxt_switches:\s+(\d+)/m)[0];
};
my $before = $switches->();
sleep(2);
is($switches->(), $before, 'idle: the watcher does not wake up while nothing changes');

# a server restart, with a change made while the server was down: the
# watcher starts with a full refresh, and the LOG line says why
$node->stop;
edit("$tasks/ALP-TSK-0001_parse-frontmatter.md", '^state: Unwatched$', 'state: Restarted');
$log = -s $node->logfile;
$node->start;
wait_for("SELECT state = 'Restarted' FROM w.items WHERE path ~ 'ALP-TSK-0001_'",
	'a server restart: a change made while it was down arrives');
ok($node->log_contains(qr/full refresh of backlog "w".*\n.*DETAIL:  The watcher started\./, $log),
	'a server restart: a full refresh, with a LOG line that says why');
same_as_rebuild('a server restart');

# attached with watch => true, then detached while watched: the watcher
# takes it, then lets it go
query("SELECT kabsd_attach('$backlog', 'w2', watch => true)");
is(query("SELECT watched FROM kabsd_status('w2')"), 't', 'kabsd_attach(watch => true) watches it');
wait_for("SELECT query = 'watching 2 backlogs' FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'two backlogs watched');
query("SELECT kabsd_detach('w2')");
wait_for("SELECT query = 'watching 1 backlogs' FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'a watched backlog detached: the watcher lets it go');

# a root that cannot be watched: a clear error, nothing watched
my $gone = PostgreSQL::Test::Utils::tempdir();
query("SELECT kabsd_attach('$gone', 'gone')");
rmdir($gone) or die "could not remove $gone: $!";
($ret, $out, $err) = $node->psql('postgres', "SELECT kabsd_watch('gone')");
like($err, qr/ERROR:  could not watch directory ".*": No such file or directory/,
	'a root that cannot be watched: a clear error');
is(query("SELECT watch FROM kabsd.backlogs WHERE name = 'gone'"), 'f', 'a root that cannot be watched is not watched');
query("SELECT kabsd_detach('gone')");

# the polling mode, switched on by a reload: no inotify, a walk every
# interval, changes still shown
$log = -s $node->logfile;
query("ALTER SYSTEM SET kabsd_fdw.watch_mode = 'poll'");
query("ALTER SYSTEM SET kabsd_fdw.watch_poll_interval_ms = 500");
$node->reload;
$node->wait_for_log(qr/full refresh of backlog "w".*\n.*DETAIL:  kabsd_fdw.watch_mode changed\./, $log);
$pid = query($watcher);
my $inotify = sub {
	return scalar grep { (readlink($_) // '') =~ /inotify/ } glob("/proc/$pid/fd/*");
};
is($inotify->(), 0, 'polling: the watcher has no inotify instance');
my $polls = query("SELECT count(*) FROM kabsd.refresh_history WHERE name = 'w' AND status = 'unchanged'");
wait_for("SELECT count(*) >= $polls + 2 FROM kabsd.refresh_history WHERE name = 'w' AND status = 'unchanged'",
	'polling: the backlog is refreshed on an interval');
edit("$tasks/ALP-TSK-0001_parse-frontmatter.md", '^state: Restarted$', 'state: Polled');
wait_for("SELECT state = 'Polled' FROM w.items WHERE path ~ 'ALP-TSK-0001_'", 'polling: a save shows');
same_as_rebuild('polling');

# and back to inotify
query("ALTER SYSTEM RESET kabsd_fdw.watch_mode");
$node->reload;
wait_for("SELECT count(*) = 0 FROM kabsd.refresh_history WHERE name = 'w' AND started_at > now() - interval '1 second'",
	'inotify again: no more polls');
is($inotify->(), 1, 'inotify again: one inotify instance');

$node->stop;
done_testing();
