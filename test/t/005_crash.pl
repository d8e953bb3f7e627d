
# Copyright: kabsd_fdw authors.  A refresh cancelled by statement_timeout,
# and a backend killed with SIGKILL in the middle of a refresh: afterwards
# the server is up, the old snapshot is complete, and the next refresh
# succeeds and brings the changes in.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $dir = PostgreSQL::Test::Utils::tempdir() . '/backlog';
system('perl', 'bench/gen_corpus.pl', $dir, 6000, 3) == 0 or die "could not generate the backlog";

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
# as a production server does (the test modules' default is off)
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_attach('$dir', 'cr')"), 'rebuilt', 'attached');
my $sums = "SELECT md5(string_agg(x::text, '|' ORDER BY x.path)) FROM cr.items x";
my $before = $node->safe_psql('postgres', $sums);
my $count = $node->safe_psql('postgres', 'SELECT count(*) FROM cr.sections');

# something changed, so the next refresh writes; a full one also reads
# every file, so that it is still running when it is stopped
system(qq{find '$dir/products/beacon/items' -name '*.md' ! -name '*.index.md' | xargs sed -i 's/^state: .*/state: Review/'}) == 0
  or die;

# (1) statement_timeout cancels the refresh: the error is the query's, the
# old snapshot stays
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET statement_timeout = '100ms'; SELECT status FROM kabsd_refresh('cr', full => true)");
like($stderr, qr/canceling statement due to statement timeout/, 'statement_timeout cancels a refresh');
is($node->safe_psql('postgres', $sums), $before, 'the old snapshot is intact after the cancel');

# (2) SIGKILL of the backend in the middle of a refresh
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
$victim->query_until(qr/started/, "\\echo started\nSELECT status FROM kabsd_refresh('cr', full => true);\n");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $pid AND state = 'active' AND query LIKE '%kabsd_refresh%'"),
	'the refresh was caught running');
usleep(100_000);
kill 'KILL', $pid;
eval { $victim->quit; };
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server is up again after the crash');
is($node->safe_psql('postgres', $sums), $before, 'the old snapshot is complete after the crash');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cr.sections'), $count, 'every table kept its rows');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_refresh('cr')"), 'refreshed', 'the next refresh succeeds');
is($node->safe_psql('postgres', "SELECT count(*) FROM cr.items WHERE state = 'Review' AND product = 'beacon'"),
	$node->safe_psql('postgres', "SELECT count(*) FROM cr_live.items WHERE state = 'Review' AND product = 'beacon'"),
	'and brings the edits in');

$node->stop;
done_testing();
