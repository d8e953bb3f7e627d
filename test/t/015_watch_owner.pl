# The watcher refreshes as the backlog's owner, restricted; a cancel does
# not end it; kabsd_watch_check is for pg_read_server_files; a DROP
# EXTENSION makes it let go.
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

my $node = watcher_node('owner', "log_min_messages = debug1\n");
sub query { return $node->safe_psql('postgres', shift); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }

query(q{CREATE EXTENSION kabsd_fdw;
CREATE ROLE regress_owner LOGIN IN ROLE pg_read_server_files;
CREATE ROLE regress_other LOGIN;
GRANT USAGE ON FOREIGN DATA WRAPPER kabsd_fdw TO regress_owner;
GRANT CREATE ON DATABASE postgres TO regress_owner;});
my $as_owner = "SET ROLE regress_owner; ";
is(query($as_owner . "SELECT status FROM kabsd_attach('$backlog', 'o')"), 'rebuilt', 'attached by a role that is not superuser');
query($as_owner . q{CREATE FUNCTION o.probe(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF t LIKE 'FAIL%' THEN RAISE EXCEPTION 'probe refuses %', t; END IF;
  RAISE WARNING 'probe: user=% session=% path=%', current_user, session_user, current_setting('search_path');
  RETURN t;
END $$;
CREATE INDEX ON o.items (o.probe(id::text));
SELECT kabsd_watch('o');});

my $log = -s $node->logfile;
save_file("$tasks/ALP-TSK-0009_added.md", "---\nid: ALP-TSK-0009\ntitle: Added\nstate: New\n---\n# Added\n");
wait_for("SELECT count(*) = 1 FROM o.items WHERE id = 'ALP-TSK-0009'", 'a new file shows in the snapshot');
my $super = query('SELECT rolname FROM pg_authid WHERE oid = 10');
ok($node->log_contains(qr/probe: user=regress_owner session=\Q$super\E path=pg_catalog, pg_temp/, $log),
	'the index expression ran as the owner, with search_path pg_catalog, pg_temp');
ok(!$node->log_contains(qr/probe: user=\Q$super\E/, $log), 'and never as the superuser');
is(query("SELECT usename FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'"), $super,
	'the watcher itself stays the bootstrap superuser');

# a failure under the restricted operation: recorded by kabsd_record_failure
save_file("$tasks/FAIL-TSK-0001_x.md", "---\nid: FAIL-TSK-0001\ntitle: F\nstate: New\n---\n# F\n");
wait_for("SELECT count(*) > 0 FROM kabsd.refresh_history WHERE name = 'o' AND status = 'failed' AND error ~ 'probe refuses'",
	'a failed refresh as the owner is recorded in kabsd.refresh_history');
unlink("$tasks/FAIL-TSK-0001_x.md");
wait_for("SELECT status <> 'failed' FROM kabsd.refresh_history WHERE name = 'o' ORDER BY id DESC LIMIT 1",
	'the retry succeeds once the file is gone');

# a cancel does not end the watcher
my $pid = query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'");
query("SELECT pg_cancel_backend($pid)");
sleep(1);
is(query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'"), $pid,
	'pg_cancel_backend leaves the watcher running');
save_file("$tasks/ALP-TSK-0011_added.md", "---\nid: ALP-TSK-0011\ntitle: Added\nstate: New\n---\n# Added\n");
wait_for("SELECT count(*) = 1 FROM o.items WHERE id = 'ALP-TSK-0011'", 'after a cancel, a new file still shows');

# kabsd_watch_check is for pg_read_server_files
my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE regress_other; SELECT kabsd_watch_check('/')");
like($err, qr/permission denied for function kabsd_watch_check/, 'kabsd_watch_check is not PUBLIC');
query('GRANT EXECUTE ON FUNCTION kabsd_watch_check(text) TO regress_other');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE regress_other; SELECT kabsd_watch_check('/')");
like($err, qr/ERROR:  permission denied to watch directory "\/"/, 'kabsd_watch_check checks pg_read_server_files itself');

# DROP EXTENSION fires no trigger: the failed refresh makes the watcher let go
$log = -s $node->logfile;
query('DROP EXTENSION kabsd_fdw CASCADE');
save_file("$tasks/ALP-TSK-0010_added.md", "---\nid: ALP-TSK-0010\ntitle: Added\nstate: New\n---\n# Added\n");
$node->wait_for_log(qr/kabsd_fdw watcher stopped watching backlog "o"/, $log);
ok(1, 'after DROP EXTENSION the watcher lets the backlog go');
wait_for("SELECT query = 'watching 0 backlogs' FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'",
	'and watches nothing');
$node->stop;
done_testing();
