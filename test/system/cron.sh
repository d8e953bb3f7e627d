#!/usr/bin/env bash
# pg_cron schedules kabsd_refresh(); a file change reaches the snapshot
# through the scheduled job, recorded in cron.job_run_details and in
# kabsd.refresh_history.  The cluster preloads pg_cron for database
# kabsd_cron (test/cluster.sh); pg_cron 1.4 runs jobs once a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/system/lib.sh
dir=/tmp/kabsd-cron
rm -rf "$dir" && cp -r test/fixtures/backlog "$dir" && chmod -R a+rX "$dir"
dropdb --force --if-exists kabsd_cron 2>/dev/null
createdb kabsd_cron
q -d kabsd_cron -c 'CREATE EXTENSION pg_cron' -c 'CREATE EXTENSION kabsd_fdw'
ok "$(q -d kabsd_cron -c "SELECT status FROM kabsd_attach('$dir', 'backlog')")" rebuilt "attached"
q -d kabsd_cron -c "SELECT cron.schedule('kabsd', '* * * * *', 'SELECT kabsd_refresh()')" >/dev/null
sed -i 's/state: InProgress/state: Done/' "$dir/products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md"
ok "$(q -d kabsd_cron -c "SELECT state FROM backlog_live.items WHERE title = 'Parse frontmatter'")" Done "the live table sees the edit at once"
ok "$(q -d kabsd_cron -c "SELECT state FROM backlog.items WHERE title = 'Parse frontmatter'")" InProgress "the snapshot waits for a refresh"
state=""
for _ in $(seq 1 75); do
	state=$(q -d kabsd_cron -c "SELECT state FROM backlog.items WHERE title = 'Parse frontmatter'")
	[ "$state" = Done ] && break
	sleep 2
done
ok "$state" Done "the scheduled job carried the edit into the snapshot"
ok "$(q -d kabsd_cron -c "SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'kabsd' AND d.status = 'succeeded'")" t "cron.job_run_details records the run"
ok "$(q -d kabsd_cron -c "SELECT string_agg(status, ',' ORDER BY id) FROM kabsd.refresh_history WHERE status <> 'unchanged'")" rebuilt,refreshed "the refresh history records the attach and the scheduled refresh"
q -d kabsd_cron -c "SELECT cron.unschedule('kabsd')" >/dev/null
finish
