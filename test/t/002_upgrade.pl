
# Copyright: kabsd_fdw authors.  ALTER EXTENSION kabsd_fdw UPDATE from 0.1.0
# on a database with an attached backlog, as a DBA does it: 0.1.0 installed
# and attached (built from the Git history), then the new version installed
# over it, the server restarted, the extension updated, and one
# kabsd_refresh() turns the 0.1.0 snapshot (materialized views) into the
# tables this version keeps.  Both versions are installed into a private
# copy of the PostgreSQL installation, so nothing outside the test changes.
use strict;
use warnings;
use Cwd;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The last commit of 0.1.0.
my $v010 = 'e90b873ed65d5018243f33f254730810a71672ee';

my $src = getcwd();
if (system("git -C '$src' cat-file -e $v010^{commit} 2>/dev/null") != 0)
{
	BAIL_OUT("the upgrade test builds 0.1.0 from commit $v010, which this checkout lacks (a shallow clone?)");
}

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $bindir = `pg_config --bindir`;
chomp $bindir;
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
(my $installdir = $bindir) =~ s{/bin$}{};

# A private installation: the server's directories copied under $tmp, at
# the same relative places, so that the server finds its share directory
# and $libdir there.
sub run_ok
{
	my ($cmd, $what) = @_;
	my $out = `$cmd 2>&1`;
	ok($? == 0, $what) or diag($out);
}
run_ok("mkdir -p '$tmp$installdir' '$tmp$sharedir' && cp -a '$installdir/.' '$tmp$installdir/' && cp -a '$sharedir/.' '$tmp$sharedir/'",
	'a private copy of the installation');
run_ok("mkdir '$tmp/v010' && git -C '$src' archive $v010 | tar -x -C '$tmp/v010'",
	'the 0.1.0 sources');
run_ok("make -C '$tmp/v010' -s && make -C '$tmp/v010' -s install DESTDIR='$tmp'",
	'0.1.0 built and installed');

my $node = PostgreSQL::Test::Cluster->new('upgrade', install_path => "$tmp$installdir");
$node->init;
$node->start;

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
system('cp', '-R', 'examples/backlog', $backlog) == 0 or die "could not copy the example backlog";

$node->safe_psql('postgres', "CREATE EXTENSION kabsd_fdw VERSION '0.1.0'");
is($node->safe_psql('postgres', "SELECT status FROM kabsd_attach('$backlog')"),
	'rebuilt', '0.1.0 attaches the backlog');
is($node->safe_psql('postgres', "SELECT relkind FROM pg_class WHERE oid = 'backlog.items'::regclass"),
	'm', 'a 0.1.0 snapshot is made of materialized views');
my $items_010 = $node->safe_psql('postgres', "SELECT string_agg(id || ' ' || state, ',' ORDER BY path) FROM backlog.items");
$node->safe_psql('postgres', 'CREATE ROLE bi; GRANT USAGE ON SCHEMA backlog TO bi; GRANT SELECT ON backlog.items TO bi');

# the new version installed over it, as a package upgrade does
$node->stop;
run_ok("make -C '$src' -s install DESTDIR='$tmp'", 'this version installed over it');
$node->start;

$node->safe_psql('postgres', 'ALTER EXTENSION kabsd_fdw UPDATE');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'kabsd_fdw'"),
	'0.2.0', 'ALTER EXTENSION kabsd_fdw UPDATE');
is($node->safe_psql('postgres', "SELECT string_agg(id || ' ' || state, ',' ORDER BY path) FROM backlog.items"),
	$items_010, 'until the next refresh, the old snapshot still answers');

is($node->safe_psql('postgres', "SELECT status FROM kabsd_refresh()"),
	'rebuilt', 'the next kabsd_refresh() rebuilds the snapshot');
is($node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT relkind::text, ',') FROM pg_class WHERE relnamespace = 'backlog'::regnamespace AND relkind IN ('r', 'm')"),
	'r', 'as tables');
is($node->safe_psql('postgres', "SELECT has_table_privilege('bi', 'backlog.items', 'SELECT')"),
	't', 'a grant on a 0.1.0 view goes to the table that replaces it');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_namespace WHERE nspname = 'backlog_stage'"),
	'0', 'the staging schema is gone');
is($node->safe_psql('postgres', "SELECT string_agg(id || ' ' || state, ',' ORDER BY path) FROM backlog.items"),
	$items_010, 'with the same items');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_refresh()"),
	'unchanged', 'and the refresh after it finds nothing changed');

# the updated extension has what a new install has
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION kabsd_fdw');
$node->safe_psql('fresh', "SELECT kabsd_attach('$backlog')");
my $objects = q{
	SELECT string_agg(d, E'\n' ORDER BY d) FROM (
	SELECT pg_describe_object(classid, objid, 0) AS d
	FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'kabsd_fdw')) o};
is($node->safe_psql('postgres', $objects), $node->safe_psql('fresh', $objects),
	'the updated extension has the objects of a new install');
my $tables = q{
	SELECT string_agg(format('%s.%s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod)), E'\n'
	                  ORDER BY c.relname, a.attnum)
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
	WHERE c.relnamespace = 'backlog'::regnamespace AND c.relkind IN ('r', 'v', 'i')};
is($node->safe_psql('postgres', $tables), $node->safe_psql('fresh', $tables),
	'the snapshot has the tables, indexes and views of a new attach');
my $rows = q{
	SELECT string_agg(t || ' ' || n, ',' ORDER BY t) FROM (
	  SELECT 'files' AS t, md5(string_agg(x::text, '|' ORDER BY path)) AS n FROM backlog.files x
	  UNION ALL SELECT 'links', md5(string_agg(x::text, '|' ORDER BY path, ordinal)) FROM backlog.links x
	  UNION ALL SELECT 'sections', md5(string_agg(x::text, '|' ORDER BY path, ordinal)) FROM backlog.sections x) s};
is($node->safe_psql('postgres', $rows), $node->safe_psql('fresh', $rows),
	'and the same rows');

$node->stop;
done_testing();
