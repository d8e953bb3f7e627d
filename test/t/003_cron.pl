
# Copyright: kabsd_fdw authors.  pg_cron schedules kabsd_refresh(): a file
# changed on disk reaches the snapshot through the scheduled job, which
# cron.job_run_details and kabsd.refresh_history record; a refresh that
# fails is a failed run.  pg_cron 1.4 (Debian 12) runs a job at most once
# a minute, so this waits up to about three minutes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
system('cp', '-R', 'test/fixtures/backlog', $backlog) == 0 or die "could not copy the fixture backlog";
my $task = "$backlog/products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md";

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron; CREATE EXTENSION kabsd_fdw');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_attach('$backlog', 'backlog')"),
	'rebuilt', 'attached');
$node->safe_psql('postgres', "SELECT cron.schedule('kabsd', '* * * * *', 'SELECT kabsd_refresh()')");

system("sed -i 's/state: InProgress/state: Done/' $task") == 0 or die;
is($node->safe_psql('postgres', "SELECT state FROM backlog_live.items WHERE title = 'Parse frontmatter'"),
	'Done', 'the live table sees the edit at once');
is($node->safe_psql('postgres', "SELECT state FROM backlog.items WHERE title = 'Parse frontmatter'"),
	'InProgress', 'the snapshot waits for a refresh');

ok($node->poll_query_until('postgres',
		"SELECT state = 'Done' FROM backlog.items WHERE title = 'Parse frontmatter'"),
	'the scheduled job carried the edit into the snapshot');
ok($node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		WHERE j.jobname = 'kabsd' AND d.status = 'succeeded'}),
	'cron.job_run_details records the run');
is($node->safe_psql('postgres',
		"SELECT string_agg(status, ',' ORDER BY id) FROM kabsd.refresh_history WHERE status <> 'unchanged'"),
	'rebuilt,refreshed', 'the refresh history records the attach and the scheduled refresh');

# A refresh that fails raises an ERROR: the job's run is "failed" in
# cron.job_run_details, with the reason, and the history records it too
rename($backlog, "$backlog.away") or die "could not move $backlog away: $!";
ok($node->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		WHERE j.jobname = 'kabsd' AND d.status = 'failed'
		  AND d.return_message LIKE '%could not refresh backlog "backlog"%'}),
	'a scheduled refresh that fails is "failed" in cron.job_run_details');
is($node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM kabsd.refresh_history WHERE status = 'failed' AND error LIKE 'could not open backlog root%'"),
	't', 'and the refresh history records the failure');
rename("$backlog.away", $backlog) or die "could not move $backlog back: $!";
$node->safe_psql('postgres', "SELECT cron.unschedule('kabsd')");

$node->stop;
done_testing();
