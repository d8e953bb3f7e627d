
# Copyright: kabsd_fdw authors.  The cloud cache, end to end: an indexer
# beside the files publishes the snapshot; a second cluster that never ran
# CREATE EXTENSION kabsd_fdw subscribes with the script kabsd_subscriber_sql()
# gives it; a physical standby streams from the indexer.  After every kind of
# change to the files, each copy equals the indexer, table by table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @tables = qw(files items decisions links worklog sections checklist refreshes vocabulary);
my @views = qw(item_tags active tree ready_gate state_changes flow throughput lint);

# A checksum of every row of every snapshot table, in key order.
sub sums
{
	my ($node, $db) = @_;
	my %sum;
	for my $t (@tables)
	{
		my $order = $t eq 'refreshes' ? 'id' : $t eq 'vocabulary' ? 'kind, word'
		  : $t =~ /^(files|items|decisions)$/ ? 'path' : 'path, ordinal';
		$sum{$t} = $node->safe_psql($db,
			"SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY $order)), '') FROM backlog.$t x");
	}
	return \%sum;
}

# A checksum of every row of every view, in the rows' text order.
sub view_sums
{
	my ($node, $db) = @_;
	my %sum;
	for my $v (@views)
	{
		$sum{$v} = $node->safe_psql($db,
			"SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text COLLATE \"C\")), '') FROM backlog.$v x");
	}
	return \%sum;
}

# Every table of a copy equals the indexer's.
sub same_as_indexer
{
	my ($indexer, $copy, $db, $what) = @_;
	my $want = sums($indexer, 'postgres');
	my $have = sums($copy, $db);
	for my $t (@tables)
	{
		is($have->{$t}, $want->{$t}, "$what: $t");
	}
	# the views answer as on the indexer
	$want = view_sums($indexer, 'postgres');
	$have = view_sums($copy, $db);
	for my $v (@views)
	{
		is($have->{$v}, $want->{$v}, "$what: view $v");
	}
}

sub refresh
{
	my ($node, $args) = @_;
	$args //= "'backlog'";
	return $node->safe_psql('postgres', "SELECT status FROM kabsd_refresh($args)");
}

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
system('cp', '-R', 'examples/backlog', $backlog) == 0 or die "could not copy the example backlog";
my $items = "$backlog/products/shop/items";

# the indexer: the files' PostgreSQL, with wal_level = logical
my $indexer = PostgreSQL::Test::Cluster->new('indexer');
$indexer->init(allows_streaming => 'logical');
$indexer->start;
$indexer->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
is($indexer->safe_psql('postgres', "SELECT status FROM kabsd_attach('$backlog')"),
	'rebuilt', 'attach fills the snapshot');
is($indexer->safe_psql('postgres', "SELECT kabsd_publish('backlog')"),
	'kabsd_backlog', 'publish names the publication');
is($indexer->safe_psql('postgres', "SELECT kabsd_publish('backlog')"),
	'kabsd_backlog', 'publishing again changes nothing');
is($indexer->safe_psql('postgres',
		"SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'kabsd_backlog'"),
	'checklist,decisions,files,items,links,refreshes,sections,vocabulary,worklog',
	'the publication carries the snapshot, its refreshes and its vocabulary');

# a physical standby
$indexer->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($indexer, 'base', has_streaming => 1);
$standby->start;

# the cloud: kabsd_fdw is never created there
my $cloud = PostgreSQL::Test::Cluster->new('cloud');
$cloud->init;
$cloud->start;
$cloud->safe_psql('postgres', 'CREATE DATABASE cloud');
my $script = $indexer->safe_psql('postgres', "SELECT kabsd_subscriber_sql('backlog')");
my ($ret, $stdout, $stderr) = $cloud->psql('cloud', $script, on_error_stop => 1);
is($ret, 0, 'the subscriber script runs as it is in a database without kabsd_fdw');
is($stderr, '', 'and says nothing');
is($cloud->safe_psql('cloud', "SELECT count(*) FROM pg_extension WHERE extname = 'kabsd_fdw'"),
	'0', 'no extension on the cloud side');
my $connstr = $indexer->connstr . ' dbname=postgres';
$cloud->safe_psql('cloud',
	"CREATE SUBSCRIPTION backlog CONNECTION '$connstr' PUBLICATION kabsd_backlog");
$cloud->wait_for_subscription_sync($indexer, 'backlog');
$indexer->wait_for_catchup($standby);
same_as_indexer($indexer, $cloud, 'cloud', 'first copy');
same_as_indexer($indexer, $standby, 'postgres', 'standby');

# the copy has the indexer's keys, indexes, comments, views and guard
is($cloud->safe_psql('cloud',
		"SELECT count(*) FROM pg_indexes WHERE schemaname = 'backlog'"),
	$indexer->safe_psql('postgres', "SELECT count(*) FROM pg_indexes WHERE schemaname = 'backlog'"),
	'the copy has the same indexes');
is($cloud->safe_psql('cloud', "SELECT count(*) FROM backlog.item_tags"),
	$indexer->safe_psql('postgres', "SELECT count(*) FROM backlog.item_tags"),
	'the views work on the copy');
is($cloud->safe_psql('cloud', "SELECT col_description('backlog.items'::regclass, 4)"),
	'Workflow state, as written.', 'the copy has the comments');
my $view_shape = q{SELECT string_agg(format('%s %s %s', c.relname, a.attname,
	coalesce(col_description(c.oid, a.attnum), '-')), E'\n' ORDER BY c.relname, a.attnum)
	FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
	WHERE c.relnamespace = 'backlog'::regnamespace AND c.relkind = 'v'};
is($cloud->safe_psql('cloud', $view_shape), $indexer->safe_psql('postgres', $view_shape),
	'the copy has the views, their columns and their comments');
isnt($cloud->safe_psql('cloud', "SELECT count(*) FROM backlog.lint"), '0',
	'the copy\'s lint finds the example backlog\'s problem');
($ret, $stdout, $stderr) = $cloud->psql('cloud', "DELETE FROM backlog.items");
like($stderr, qr/cannot change snapshot table "backlog.items"/, 'the copy refuses writes too');

# Watch what a refresh sends: a decoding slot on the indexer
$indexer->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('probe', 'test_decoding')");
sub sent
{
	my $changes = $indexer->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE data ~ '^table backlog\\.(files|items|decisions|links|worklog|sections|checklist): (INSERT|DELETE|UPDATE)')
		 FROM pg_logical_slot_get_changes('probe', NULL, NULL)");
	return $changes;
}

# An edit, an addition, a rename and a deletion
system("sed -i 's/^state: .*/state: Done/' $items/task/0000/SHOP-TSK-0001_cart-table.md") == 0 or die;
is(refresh($indexer), 'refreshed', 'an edit is refreshed');
my $written = $indexer->safe_psql('postgres',
	"SELECT rows_written FROM kabsd.refresh_history ORDER BY id DESC LIMIT 1");
cmp_ok($written, '>', 0, 'the edit wrote rows');
cmp_ok($written, '<', 10, 'only the edited file\'s rows');
is(sent(), $written, 'a one-file refresh sends that file\'s rows, not the tables');

open(my $fh, '>', "$items/task/0000/SHOP-TSK-0003_new.md") or die;
print $fh "---\nid: SHOP-TSK-0003\nuid: 7d0c2a94-1b7e-4c52-9d3e-0a1f000000f3\ntitle: New\nstate: New\nparent: SHOP-USR-0001\n---\n## Goal\n- [ ] new\n";
close($fh);
rename("$items/task/0000/SHOP-TSK-0002_expire-carts.md", "$items/task/0000/SHOP-TSK-0002_renamed.md") or die;
unlink("$items/bug/0000/SHOP-BUG-0001_double-charge.md") or die;
is(refresh($indexer), 'refreshed', 'an addition, a rename and a deletion are refreshed');
$indexer->wait_for_catchup('backlog');
$indexer->wait_for_catchup($standby);
same_as_indexer($indexer, $cloud, 'cloud', 'after edits');
same_as_indexer($indexer, $standby, 'postgres', 'standby after edits');
is($cloud->safe_psql('cloud', "SELECT state FROM backlog.items WHERE id = 'SHOP-TSK-0001'"),
	'Done', 'the cloud shows the edit');
is($cloud->safe_psql('cloud',
		"SELECT status FROM backlog.refreshes ORDER BY id DESC LIMIT 1"),
	'refreshed', 'the cloud knows how fresh it is');

# The subscriber away during three refreshes catches up
$cloud->stop;
for my $i (1 .. 3)
{
	system("sed -i 's/^title: .*/title: Edited $i/' $items/story/0000/SHOP-USR-0001_persist-carts.md") == 0 or die;
	is(refresh($indexer), 'refreshed', "refresh $i with the cloud away");
}
$cloud->start;
$indexer->wait_for_catchup('backlog');
same_as_indexer($indexer, $cloud, 'cloud', 'caught up');

# A rebuild: every table emptied behind the guard (a TRUNCATE replicates),
# then filled again; and a full refresh
$indexer->safe_psql('postgres', q{
	SET session_replication_role = replica;
	TRUNCATE backlog.files, backlog.items, backlog.decisions, backlog.links,
	         backlog.worklog, backlog.sections, backlog.checklist;
});
is(refresh($indexer), 'rebuilt', 'emptied tables are rebuilt');
is(refresh($indexer, "'backlog', full => true"), 'refreshed', 'a full refresh');
$indexer->wait_for_catchup('backlog');
$indexer->wait_for_catchup($standby);
same_as_indexer($indexer, $cloud, 'cloud', 'after a rebuild');
same_as_indexer($indexer, $standby, 'postgres', 'standby after a rebuild');

# A snapshot table dropped on the indexer: the refresh makes it again; it
# joins the publication empty, and its TRUNCATE clears the copy's rows
# before the new ones arrive
$indexer->safe_psql('postgres', 'DROP TABLE backlog.worklog CASCADE');
system("sed -i 's/^title: .*/title: Edited again/' $items/story/0000/SHOP-USR-0001_persist-carts.md") == 0 or die;
is(refresh($indexer), 'rebuilt', 'a dropped table is made again');
$indexer->wait_for_catchup('backlog');
$indexer->wait_for_catchup($standby);
same_as_indexer($indexer, $cloud, 'cloud', 'after a dropped table');
same_as_indexer($indexer, $standby, 'postgres', 'standby after a dropped table');

# The vocabulary is the indexer's configuration: an edit reaches the copy,
# whose views follow it
$indexer->safe_psql('postgres',
	"INSERT INTO backlog.vocabulary VALUES ('state', 'Parked', 'open', 10); UPDATE backlog.vocabulary SET class = 'open' WHERE kind = 'state' AND word = 'Done'");
$indexer->wait_for_catchup('backlog');
$indexer->wait_for_catchup($standby);
same_as_indexer($indexer, $cloud, 'cloud', 'after a vocabulary edit');
same_as_indexer($indexer, $standby, 'postgres', 'standby after a vocabulary edit');
is($cloud->safe_psql('cloud', "SELECT count(*) FROM backlog.active WHERE state = 'Done'"),
	$indexer->safe_psql('postgres', "SELECT count(*) FROM backlog.items WHERE state = 'Done'"),
	'the copy counts Done as open, as the indexer says');
$indexer->safe_psql('postgres',
	"DELETE FROM backlog.vocabulary WHERE word = 'Parked'; UPDATE backlog.vocabulary SET class = 'done' WHERE kind = 'state' AND word = 'Done'");

# Names that are not valid UTF-8, and a path longer than PATH_MAX: listed
# with an error, nothing else taken from them, and they replicate
open($fh, '>', "$items/task/0000/SHOP-TSK-0004_\xff.md") or die;
print $fh "---\nid: SHOP-TSK-0004\nuid: 7d0c2a94-1b7e-4c52-9d3e-0a1f000000f4\n---\n## Goal\n- [ ] hidden\n";
close($fh);
mkdir("$backlog/topics/caf\xe9") or die;
open($fh, '>', "$backlog/topics/caf\xe9/inside.md") or die;
print $fh "# inside\n";
close($fh);
my $long = 'd' x 250;
system('bash', '-c', "cd '$backlog/topics' && for i in \$(seq 17); do mkdir $long && cd $long || exit 1; done && echo '# deep' > deep.md") == 0
  or die "could not make a deep tree";
is(refresh($indexer), 'refreshed', 'odd names are refreshed');
is($indexer->safe_psql('postgres',
		"SELECT string_agg(path || ' ' || error, E'\\n' ORDER BY path) FROM backlog.files WHERE path ~ '\\\\x'"),
	"products/shop/items/task/0000/SHOP-TSK-0004_\\xFF.md name is not valid UTF-8\ntopics/caf\\xE9 name is not valid UTF-8",
	'invalid bytes are escaped, the files listed with an error');
is($indexer->safe_psql('postgres',
		"SELECT count(*) FROM backlog.files WHERE error LIKE 'path is longer than PATH_MAX%' AND octet_length(path) < 1100"),
	'1', 'the over-long path is listed, shortened');
is($indexer->safe_psql('postgres',
		"SELECT count(*) FROM backlog.items WHERE id = 'SHOP-TSK-0004'")
	  . $indexer->safe_psql('postgres', "SELECT count(*) FROM backlog.checklist WHERE text = 'hidden'")
	  . $indexer->safe_psql('postgres', "SELECT count(*) FROM backlog.files WHERE path ~ 'inside|deep'"),
	'000', 'nothing of them enters another table');
$indexer->wait_for_catchup('backlog');
same_as_indexer($indexer, $cloud, 'cloud', 'after odd names');

# pg_dump and restore: into a new database, with data, then without
my $dump = PostgreSQL::Test::Utils::tempdir() . '/indexer.dump';
$indexer->command_ok([ 'pg_dump', '-Fc', '-d', $indexer->connstr('postgres'), '-f', $dump ],
	'pg_dump of a database with an attached backlog');
$indexer->safe_psql('postgres', 'CREATE DATABASE restored');
$indexer->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $indexer->connstr('restored'), $dump ],
	'the dump restores without an error');
is(refresh_db($indexer, 'restored'), 'unchanged', 'the restored snapshot is current');
is_deeply(sums_without_refreshes($indexer, 'restored'), sums_without_refreshes($indexer, 'postgres'),
	'the restored tables equal the indexer');
# the snapshot is derived data: a backup may leave its rows out
my $nodata = PostgreSQL::Test::Utils::tempdir() . '/nodata.dump';
$indexer->command_ok([ 'pg_dump', '-Fc', '--exclude-table-data=backlog.*', '-d',
		$indexer->connstr('postgres'), '-f', $nodata ],
	'pg_dump without the snapshot\'s rows');
$indexer->safe_psql('postgres', 'CREATE DATABASE nodata');
$indexer->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $indexer->connstr('nodata'), $nodata ],
	'which restores without an error');
is(refresh_db($indexer, 'nodata'), 'rebuilt', 'a snapshot restored without its rows is rebuilt');
is_deeply(sums_without_refreshes($indexer, 'nodata'), sums_without_refreshes($indexer, 'postgres'),
	'and equals the indexer');

sub refresh_db
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, "SELECT status FROM kabsd_refresh('backlog')");
}

sub sums_without_refreshes
{
	my ($node, $db) = @_;
	my $s = sums($node, $db);
	delete $s->{refreshes};
	return $s;
}

# Detach drops the publication (the subscription goes first)
$cloud->safe_psql('cloud', 'DROP SUBSCRIPTION backlog');
$indexer->safe_psql('postgres', "SELECT pg_drop_replication_slot('probe')");
$indexer->safe_psql('postgres', "SELECT kabsd_detach('backlog')");
is($indexer->safe_psql('postgres', "SELECT count(*) FROM pg_publication"),
	'0', 'detach drops the publication');

$cloud->stop;
$standby->stop;
$indexer->stop;
done_testing();
