# Copyright: kabsd_fdw authors.  kabsd_status().pending: the changed paths
# the watcher holds for its next refresh.  With a quiet period of a minute
# the changes wait: N new files are N pending paths, since a time in the
# past, and the snapshot has none of them; a reload with a short quiet
# period refreshes them, and pending falls to 0.  NULL for a backlog that
# is not watched, and while no watcher runs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use KabsdWatch;

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
my $tasks = "$backlog/products/alpha/items/task/0000";

my $node = watcher_node('pending', q{
kabsd_fdw.watch_quiet_ms = 60000
kabsd_fdw.watch_max_delay_ms = 60000
});
sub query { return $node->safe_psql('postgres', shift); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }

query('CREATE EXTENSION kabsd_fdw');
query("SELECT kabsd_attach('$backlog', 'w', watch => true)");
query("SELECT kabsd_attach('$backlog', 'unwatched')");

# the first refresh of a backlog newly watched does not wait
wait_for("SELECT pending = 0 AND pending_since IS NULL FROM kabsd_status('w')",
	'watched, nothing changed: pending is 0, pending_since NULL');
is(query("SELECT pending IS NULL AND pending_since IS NULL FROM kabsd_status('unwatched')"), 't',
	'a backlog not watched: pending is NULL');

# N new files wait out the quiet period: N paths pending
my $n = 7;
my $before = query('SELECT now()');
for my $i (1 .. $n)
{
	my $id = sprintf('ALP-TSK-%04d', 100 + $i);
	open(my $fh, '>', "$tasks/${id}_pending.md") or die "could not write: $!";
	print $fh "---\nid: $id\ntitle: Pending $i\nstate: New\n---\n# Pending\n";
	close($fh) or die "could not write: $!";
}
wait_for("SELECT pending = $n FROM kabsd_status('w')", "$n new files: pending is $n");
is(query("SELECT pending_since >= '$before' AND pending_since <= now() FROM kabsd_status('w')"), 't',
	'pending_since: when the first of them changed');
is(query("SELECT count(*) FROM w.items WHERE title LIKE 'Pending %'"), '0',
	'while they are pending, the snapshot does not have them');

# a short quiet period: refreshed, nothing pending
query('ALTER SYSTEM SET kabsd_fdw.watch_quiet_ms = 100');
query('ALTER SYSTEM SET kabsd_fdw.watch_max_delay_ms = 500');
$node->reload;
wait_for("SELECT count(*) = $n FROM w.items WHERE title LIKE 'Pending %'",
	'after a reload with a short quiet period, they are refreshed');
wait_for("SELECT pending = 0 AND pending_since IS NULL FROM kabsd_status('w')",
	'and pending is 0 again');

# no watcher: NULL, not 0
my $pid = query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'");
query("SELECT pg_terminate_backend($pid)");
wait_for("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'the watcher terminated is gone');
# the watcher comes back after bgw_restart_time (5 s): this is before
is(query("SELECT watched, pending IS NULL FROM kabsd_status('w')"), 't|t',
	'while no watcher runs, pending is NULL');
wait_for("SELECT pending = 0 FROM kabsd_status('w')", 'the watcher back: pending is 0');

$node->stop;
done_testing();
