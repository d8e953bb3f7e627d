# Copyright: kabsd_fdw authors.  Freshness of the snapshot as the files
# change: edited, added, renamed and deleted files show in the live tables
# at once and in the snapshot after kabsd_refresh(); a refresh that cannot
# read the root fails, keeps the old snapshot, says why and is recorded;
# a second backlog refreshes beside the first.  Both backlogs are in
# temporary directories (a copy of the fixture backlog, and one built
# here), changed from Perl.  What the snapshot is while the files stay as
# they are is sql/refresh.sql's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
my $tasks = "$backlog/products/alpha/items/task/0000";

my $node = PostgreSQL::Test::Cluster->new('refresh');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');

sub query
{
	return $node->safe_psql('postgres', shift);
}

# The rows of $schema.items that the changes below touch, or sit beside.
sub items_touched
{
	my ($columns, $schema) = @_;
	return query("SELECT $columns FROM $schema.items WHERE path ~ '000[1239]_' ORDER BY path");
}

# Rows of expected output, one a line, without the final newline.
sub rows
{
	my $rows = shift;
	chomp $rows;
	return $rows;
}

is(query("SELECT name, files, items, status FROM kabsd_attach('$backlog', 'fresh')"),
	'fresh|19|9|rebuilt', 'attach fills the snapshot');

# Freshness: a state edited (and the worklog line that names it), a file
# added, one renamed, and one deleted: ALP-TSK-0003, which repeats the id
# ALP-TSK-0001
my $links_to_task1 = "SELECT source_id, target_id, target_uid FROM fresh.links WHERE target_id = 'ALP-TSK-0001'";
is(query($links_to_task1), 'ALP-USR-0001|ALP-TSK-0001|',
	'before the changes, a link to the ambiguous id ALP-TSK-0001 resolves to nothing');

my $task1 = "$tasks/ALP-TSK-0001_parse-frontmatter.md";
my $text = slurp_file($task1);
$text =~ s/InProgress/Done/g == 2 or die "\"InProgress\" not found twice in $task1";
# as an editor (or sed -i) saves: a new file renamed over the old one
append_to_file("$task1.new", $text);
rename("$task1.new", $task1) or die "could not rename $task1.new: $!";
append_to_file("$tasks/ALP-TSK-0009_added.md",
	"---\nid: ALP-TSK-0009\nuid: 019b8f52-0000-7000-8000-000000000009\ntitle: Added\nstate: New\n---\n- [ ] new task\n");
rename("$tasks/ALP-TSK-0002_null-id.md", "$tasks/ALP-TSK-0002_renamed.md") or die "could not rename: $!";
unlink("$tasks/ALP-TSK-0003_duplicate-id.md") or die "could not delete: $!";

# the live tables change at once, the snapshot not yet
is(items_touched("'live' AS side, id, state, path", 'fresh_live'), rows(<<'EOF'),
live|ALP-BUG-0001||products/alpha/items/bug/0000/ALP-BUG-0001_wrong-shapes.md
live|ALP-USR-0001|Draft|products/alpha/items/story/0000/ALP-USR-0001_backlog-queries.md
live|ALP-TSK-0001|Done|products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md
live||New|products/alpha/items/task/0000/ALP-TSK-0002_renamed.md
live|ALP-TSK-0009|New|products/alpha/items/task/0000/ALP-TSK-0009_added.md
live|BET-EPC-0001|Planned|products/beta/items/epic/0000/BET-EPC-0001_beta-epic.md
EOF
	'files changed: the live tables show the edit, the addition, the rename and the deletion at once');
is(items_touched("'snapshot' AS side, id, state, path", 'fresh'), rows(<<'EOF'),
snapshot|ALP-BUG-0001||products/alpha/items/bug/0000/ALP-BUG-0001_wrong-shapes.md
snapshot|ALP-USR-0001|Draft|products/alpha/items/story/0000/ALP-USR-0001_backlog-queries.md
snapshot|ALP-TSK-0001|InProgress|products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md
snapshot||New|products/alpha/items/task/0000/ALP-TSK-0002_null-id.md
snapshot|ALP-TSK-0001|Done|products/alpha/items/task/0000/ALP-TSK-0003_duplicate-id.md
snapshot|BET-EPC-0001|Planned|products/beta/items/epic/0000/BET-EPC-0001_beta-epic.md
EOF
	'files changed: the snapshot is as it was before the refresh');
is(query("SELECT name, added, changed, removed, stale FROM kabsd_status('fresh')"), 'fresh|2|1|2|t',
	'files changed: kabsd_status counts two added, one changed, two removed, and says stale');

is(query("SELECT name, files, items, status FROM kabsd_refresh('fresh')"), 'fresh|19|9|refreshed',
	'files changed: the refresh reports refreshed');
is(items_touched('id, state, path', 'fresh'), rows(<<'EOF'),
ALP-BUG-0001||products/alpha/items/bug/0000/ALP-BUG-0001_wrong-shapes.md
ALP-USR-0001|Draft|products/alpha/items/story/0000/ALP-USR-0001_backlog-queries.md
ALP-TSK-0001|Done|products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md
|New|products/alpha/items/task/0000/ALP-TSK-0002_renamed.md
ALP-TSK-0009|New|products/alpha/items/task/0000/ALP-TSK-0009_added.md
BET-EPC-0001|Planned|products/beta/items/epic/0000/BET-EPC-0001_beta-epic.md
EOF
	'after the refresh, the snapshot has the edit, the addition, the rename and the deletion');
is(query("SELECT item_id, text FROM fresh.checklist WHERE item_id = 'ALP-TSK-0009'"), 'ALP-TSK-0009|new task',
	'after the refresh, the added file\'s checklist is in');
is(query($links_to_task1), 'ALP-USR-0001|ALP-TSK-0001|019b8f52-9f3a-7c41-8e2d-5a1b3c4d5e6f',
	'after the refresh, ALP-TSK-0001 is unique again and the link to it resolves');
is(query("SELECT name, added, changed, removed, stale FROM kabsd_status('fresh')"), 'fresh|0|0|0|f',
	'after the refresh, kabsd_status finds nothing to do');

# A failed refresh raises an ERROR that says why, keeps the old snapshot
# and is recorded all the same
rename($backlog, "$backlog.away") or die "could not move $backlog away: $!";
my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT name, status, error FROM kabsd_refresh('fresh')");
isnt($ret, 0, 'root moved away: the refresh fails');
like($stderr,
	qr/ERROR:  could not refresh backlog "fresh": could not open backlog root "\Q$backlog\E": No such file or directory\nDETAIL:  The previous snapshot is kept\.\nHINT:  kabsd\.refresh_history records the failure; the next kabsd_refresh\(\) tries again\./,
	'root moved away: an error names the root and says the snapshot is kept');
is(query('SELECT count(*) AS items_still_there FROM fresh.items'), '9',
	'root moved away: the snapshot keeps its items');
rename("$backlog.away", $backlog) or die "could not move $backlog back: $!";
is(query("SELECT name, status FROM kabsd_refresh('fresh')"), 'fresh|unchanged',
	'root moved back: the next refresh finds nothing changed');

# the history of every refresh, the failed one with its SQLSTATE
is(query('SELECT name, status, files, items, errors, views_refreshed, error IS NOT NULL AS has_error, sqlstate
		FROM kabsd.refresh_history ORDER BY id'), rows(<<'EOF'),
fresh|rebuilt|19|9|4|7|f|
fresh|refreshed|19|9|4|6|f|
fresh|failed|||||t|58P01
fresh|unchanged|19|9|4|0|f|
EOF
	'refresh_history records every refresh, the failed one with its error and SQLSTATE');

# A second backlog side by side
my $second = PostgreSQL::Test::Utils::tempdir() . '/second';
mkdir($_) or die "could not create $_: $!"
  for ($second, "$second/products", "$second/products/two", "$second/products/two/items",
	"$second/products/two/items/t");
append_to_file("$second/products/two/items/t/TWO-1.md", "---\nid: TWO-1\nuid: 019b8f52-0000-7000-8000-0000000000c1\n---\n");
is(query("SELECT name, files, items, status FROM kabsd_attach('$second', 'second')"), 'second|1|1|rebuilt',
	'a second backlog is attached');
is(query('SELECT name, files, items, status FROM kabsd_refresh() ORDER BY name'),
	"fresh|19|9|unchanged\nsecond|1|1|unchanged", 'kabsd_refresh() refreshes both backlogs');
is(query('SELECT id FROM second.items'), 'TWO-1', 'the second backlog has its own item');

query("SELECT kabsd_detach('second'); SELECT kabsd_detach('fresh')");
is(query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'fresh%' OR nspname LIKE 'second%'"), '0',
	'detached, both backlogs leave no schema behind');
$node->stop;
done_testing();
