# Copyright: kabsd_fdw authors.  The refresh in place after the files
# change: only files whose stamp changed are read, only rows that differ
# are written, and the snapshot is always what a rebuild from the files
# gives.  A copy of the fixture backlog is edited, touched, given new ids,
# new files, a broken one and deleted ones, with the stamps lost, with
# parallel workers and with more files than the workers' list holds.  What
# a refresh does while the files stay as they are is sql/incremental.sql's.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::Local qw(timegm);

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
my $items = "$backlog/products/alpha/items";
my $task1 = "$items/task/0000/ALP-TSK-0001_parse-frontmatter.md";
my $story1 = "$items/story/0000/ALP-USR-0001_backlog-queries.md";

my $node = PostgreSQL::Test::Cluster->new('incremental');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
$node->safe_psql('postgres', slurp_file('test/sql-include/snapshot.sql'));

# with the threshold at 0 every refresh that reads a file shares the reading
my $parallel = 'SET kabsd_fdw.min_parallel_refresh_files = 0; SET max_parallel_maintenance_workers = 2; ';

sub query
{
	return $node->safe_psql('postgres', shift);
}

# Writes a file as an editor does: a new file renamed over the old one.
sub write_file
{
	my ($file, $text) = @_;
	open(my $fh, '>', "$file.new") or die "could not write $file.new: $!";
	print $fh $text;
	close($fh) or die "could not write $file.new: $!";
	rename("$file.new", $file) or die "could not rename $file.new: $!";
}

# Rewrites a file, with the first match of $from replaced by $to if given.
sub rewrite
{
	my ($file, $from, $to) = @_;
	my $text = slurp_file($file);
	if (defined $from)
	{
		$text =~ s/$from/$to/m or die "\"$from\" not found in $file";
	}
	write_file($file, $text);
}

# A refresh of backlog "inc": its status.
sub refresh
{
	my ($settings, $full) = @_;
	return query(($settings // '') . "SELECT status FROM kabsd_refresh('inc'" . ($full ? ', full => true' : '') . ')');
}

# What the last refresh of "inc" read and wrote, and its counts:
# status|files_read|views_refreshed|rows_written|files|items|links|sections|errors
sub last_refresh
{
	return query("SELECT status, files_read, views_refreshed, rows_written, files, items, links, sections, errors
		FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1");
}

# The same, from a refresh with parallel workers: status|files_read|wrote|shared
sub last_parallel
{
	return query("SELECT status, files_read, rows_written > 0, parallel_workers > 0
		FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1");
}

# The oracle: the snapshot against a rebuild from the files (rolled back).
sub same_as_rebuild
{
	my $what = shift;
	is(query("BEGIN; SELECT matches_rebuild('inc'); ROLLBACK;"), 'same as a rebuild',
		"$what: the snapshot is what a rebuild gives");
}

my $links_to_stories = "SELECT source_id, type, target_id, target_uid FROM inc.links
	WHERE target_id ~ 'ALP-USR' ORDER BY path, ordinal";

is(query("SELECT name, status, files, items, links FROM kabsd_attach('$backlog', 'inc')"),
	'inc|rebuilt|19|9|9', 'attach fills the snapshot');

# one item's state edited: one file read; its files and items rows rewritten
rewrite($task1, '^state: InProgress$', 'state: Done');
is(refresh(), 'refreshed', 'a state edited: refreshed');
is(last_refresh(), 'refreshed|1|2|4|19|9|9|16|4', 'a state edited: one file read, its files and items rows written');
is(query("SELECT id, state FROM inc.items WHERE path ~ 'ALP-TSK-0001'"), 'ALP-TSK-0001|Done',
	'a state edited: the snapshot has the new state');
same_as_rebuild('a state edited');

# a file touched, its content the same: read again, only mtime rewritten
my $when = timegm(5, 4, 3, 2, 0, 2030);
utime($when, $when, "$items/task/0000/ALP-TSK-0005_crlf.md") or die "could not touch: $!";
is(refresh(), 'refreshed', 'a file touched: refreshed');
is(last_refresh(), 'refreshed|1|2|4|19|9|9|16|4', 'a file touched: one file read, its files and items rows written');
is(query("SELECT mtime AT TIME ZONE 'UTC' FROM inc.files WHERE path ~ 'ALP-TSK-0005'"), '2030-01-02 03:04:05',
	'a file touched: the snapshot has the new mtime');

# an id changed: links written in other files resolve against the new id
is(query($links_to_stories),
	"ALP-TSK-0001|parent|ALP-USR-0001|019b8f52-0000-7000-8000-000000000001\n"
	  . 'ALP-TSK-0001|wikilink|ALP-USR-0001|019b8f52-0000-7000-8000-000000000001',
	'before the id changes, the links to ALP-USR-0001 resolve');
rewrite($story1, '^id: ALP-USR-0001$', 'id: ALP-USR-0100');
is(refresh(), 'refreshed', 'an id changed: refreshed');
is(last_refresh(), 'refreshed|1|6|26|19|9|9|16|4', 'an id changed: one file read, the rows that name the id written');
is(query($links_to_stories), "ALP-TSK-0001|parent|ALP-USR-0001|\nALP-TSK-0001|wikilink|ALP-USR-0001|",
	'an id changed: the links to the old id resolve to nothing');
is(query("SELECT DISTINCT item_id FROM inc.sections WHERE path ~ 'ALP-USR'"), 'ALP-USR-0100',
	'an id changed: the sections carry the new id');
same_as_rebuild('an id changed');

# a new item takes the old id: the parent link resolves to it
write_file("$items/story/0000/ALP-USR-0001_new.md",
	"---\nid: ALP-USR-0001\nuid: 019b8f52-0000-7000-8000-0000000000ee\ntitle: New story\n---\n## Goal\n- [ ] one\n");
is(refresh(), 'refreshed', 'a file added: refreshed');
is(last_refresh(), 'refreshed|1|5|8|20|10|9|17|4', 'a file added: one file read, its rows written');
is(query($links_to_stories),
	"ALP-TSK-0001|parent|ALP-USR-0001|019b8f52-0000-7000-8000-0000000000ee\n"
	  . 'ALP-TSK-0001|wikilink|ALP-USR-0001|019b8f52-0000-7000-8000-0000000000ee',
	'a file added: the links to the old id resolve to the new item');
same_as_rebuild('a file added');

# a file broken, then deleted: its rows go, files counts its error, then not
my $yaml = "$items/task/0000/ALP-TSK-0007_yaml-features.md";
write_file($yaml, "---\nid: [unclosed\n---\n");
is(refresh(), 'refreshed', 'a file broken: refreshed');
is(last_refresh(), 'refreshed|1|2|3|20|9|9|17|5', 'a file broken: one file read, one more error');
is(query("SELECT error IS NOT NULL FROM inc.files WHERE path ~ 'ALP-TSK-0007'"), 't',
	'a file broken: its files row has an error');
is(query("SELECT count(*) FROM inc.sections WHERE path ~ 'ALP-TSK-0007'"), '0',
	'a file broken: its sections are gone');
unlink($yaml) or die "could not delete $yaml: $!";
is(refresh(), 'refreshed', 'a file deleted: refreshed');
is(last_refresh(), 'refreshed|0|1|1|19|9|9|17|4', 'a file deleted: nothing read, its files row deleted');
is(query("SELECT count(*) FROM inc.files WHERE path ~ 'ALP-TSK-0007'"), '0', 'a file deleted: its files row is gone');
same_as_rebuild('a file broken, then deleted');

# the stamps lost and a file deleted meanwhile: every file is read again,
# and the rows of the deleted one still go (the files table says what the
# snapshot holds)
query("DELETE FROM kabsd.file_stamps WHERE backlog = 'inc'");
unlink("$items/task/0000/ALP-TSK-0006_bom.md") or die "could not delete: $!";
is(refresh(), 'refreshed', 'the stamps lost and a file deleted: refreshed');
is(last_refresh(), 'refreshed|18|3|3|18|8|9|16|3',
	'the stamps lost and a file deleted: every file read, the deleted one\'s rows deleted');
is(query("SELECT count(*) FROM kabsd.file_stamps WHERE backlog = 'inc'"), '18',
	'the stamps lost and a file deleted: every file stamped again');
same_as_rebuild('the stamps lost and a file deleted');

# links emptied, and an item's id changed meanwhile: the links are written
# last, resolved against the new ids
query('SET session_replication_role = replica; TRUNCATE inc.links');
rewrite($story1, '^id: ALP-USR-0100$', 'id: ALP-USR-0150');
is(refresh(), 'rebuilt', 'links emptied and an id changed: rebuilt');
is(last_refresh(), 'rebuilt|18|6|27|18|8|9|16|3', 'links emptied and an id changed: the links and the id\'s rows written');
same_as_rebuild('links emptied and an id changed');
rewrite($story1, '^id: ALP-USR-0150$', 'id: ALP-USR-0100');
is(refresh(), 'refreshed', 'the id changed back: refreshed');

# parallel workers: a state edited, an id that links point at moved, a
# file added, one gone, and a body larger than work_mem (the rows kept for
# writing go to disk); the result is the same as a rebuild's
rewrite($task1, '^state: Done$', 'state: Review');
rewrite($story1, '^id: ALP-USR-0100$', 'id: ALP-USR-0200');
write_file("$items/task/0000/ALP-TSK-0300_parallel.md",
	"---\nid: ALP-TSK-0300\nuid: 019b8f52-0000-7000-8000-0000000000ef\nparent: ALP-USR-0200\n---\n"
	  . "## Worklog\n- 2026-01-02 10:00 [agent=a] started\n");
unlink("$items/story/0000/ALP-USR-0001_new.md") or die "could not delete: $!";
write_file("$items/task/0000/ALP-TSK-0301_big.md",
	"---\nid: ALP-TSK-0301\n---\n## Context\n" . ("lorem\n" x 50000));
is(refresh($parallel . "SET work_mem = '64kB'; "), 'refreshed', 'parallel: four changes refreshed');
is(last_parallel(), 'refreshed|4|t|t', 'parallel: the four changed files read, shared with the workers');
is(query("SELECT count(*) FROM inc.items WHERE id IN ('ALP-TSK-0300', 'ALP-USR-0200', 'ALP-USR-0001')"), '2',
	'parallel: the new item and the new id are in, the deleted item is out');
is(query("SELECT length(content) FROM inc.sections WHERE item_id = 'ALP-TSK-0301'"), '299999',
	'parallel: the body larger than work_mem is whole');
same_as_rebuild('parallel');

# the stamps lost and a file rewritten (its mtime moved): every stamp is
# written once the workers are done, and the new mtime lands
query("DELETE FROM kabsd.file_stamps WHERE backlog = 'inc'");
rewrite($task1);
is(refresh($parallel, 1), 'refreshed', 'parallel, the stamps lost and a file rewritten: refreshed');
is(last_parallel(), 'refreshed|19|t|t', 'parallel, the stamps lost and a file rewritten: every file read, rows written');
is(query("SELECT (SELECT count(*) FROM kabsd.file_stamps WHERE backlog = 'inc') = (SELECT count(*) FROM inc.files)"),
	't', 'parallel, the stamps lost and a file rewritten: every file stamped');
same_as_rebuild('parallel, the stamps lost and a file rewritten');
is(refresh($parallel), 'unchanged', 'parallel: the next refresh finds nothing changed');

# parallel, an id changed: the workers send what changed in targets as a
# sum, so every link is checked again
rewrite($story1, '^id: ALP-USR-0200$', 'id: ALP-USR-0001');
is(refresh($parallel, 1), 'refreshed', 'parallel, an id changed: refreshed');
is(query("SELECT count(*) FROM inc.links WHERE target_id = 'ALP-USR-0001' AND target_uid IS NOT NULL"), '2',
	'parallel, an id changed: the links to it resolve');
same_as_rebuild('parallel, an id changed');

# many more files than the snapshot knew (1 known, 1,200 added): the list
# the workers share is full, and the backend reads the rest itself
my $many = PostgreSQL::Test::Utils::tempdir() . '/many';
mkdir("$many") or die;
mkdir("$many/topics") or die;
write_file("$many/topics/one.md", "# one\n");
is(query($parallel . "SELECT status, files FROM kabsd_attach('$many', 'many')"), 'rebuilt|1', 'many: attached with one file');
write_file("$many/topics/note-$_.md", "# note $_\n") for 1 .. 1200;
is(query($parallel . "SELECT status, files, error FROM kabsd_refresh('many', full => true)"), 'refreshed|1201|',
	'many: 1,200 files added are refreshed');
is(query("SELECT files_read, parallel_workers > 0 FROM kabsd.refresh_history WHERE name = 'many' ORDER BY id DESC LIMIT 1"),
	'1201|t', 'many: every file read, shared with the workers');

# A refresh of the paths that changed, as the watcher and the Git hooks
# call it: each path, and those below it, looked up by index; the links an
# item or decision that came, went or changed could resolve to, looked up
# by index too.
sub refresh_paths
{
	my $list = join(', ', map { "'$_'" } @_);
	return query("SELECT status FROM kabsd_refresh('inc', paths => ARRAY[$list])");
}
my $task1_rel = 'products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md';
my $stamps_agree = "SELECT (SELECT count(*) FROM kabsd.file_stamps WHERE backlog = 'inc') = (SELECT count(*) FROM inc.files)";
query('CREATE EXTENSION amcheck');
my $stamps_index_whole = "SELECT bt_index_check('kabsd.file_stamps_backlog_path_idx', heapallindexed => true)";

# an edited item given a wikilink to an item by its file name (that item
# has no id): the target is found by the index on file names
rewrite($task1, '^state: Review$', 'state: Blocked');
rewrite($task1, '^The parser reads ', 'The parser reads [[ALP-TSK-0002_null-id]], [[ALP-USR-0300_again]] and ');
is(refresh_paths($task1_rel), 'refreshed', 'paths, one file edited: refreshed');
is(query("SELECT files_read FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1"),
	'1', 'paths, one file edited: that file read');
is(query("SELECT target_uid IS NOT NULL FROM inc.links WHERE path = '$task1_rel' AND target_id = 'ALP-TSK-0002_null-id'"),
	't', 'paths, one file edited: a wikilink to a file name resolves');
same_as_rebuild('paths, one file edited');
is(query($stamps_agree), 't', 'paths, one file edited: one stamp a file');
is(query($stamps_index_whole), '', 'paths, one file edited: the index on the stamps has every stamp');
is(refresh(), 'refreshed', 'paths, one file edited: a whole refresh after it');
is(query("SELECT files_read FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1"),
	'0', 'paths, one file edited: the whole refresh finds its stamp current');

# a file deleted, and the same path given twice
my $gone = 'products/alpha/items/task/0000/ALP-TSK-0099_gone.md';
write_file("$backlog/$gone", "---\nid: ALP-TSK-0099\nstate: New\n---\n# Gone soon\n");
is(refresh_paths($gone), 'refreshed', 'paths, a new file: refreshed');
same_as_rebuild('paths, a new file');
unlink("$backlog/$gone") or die "could not delete $gone: $!";
is(refresh_paths($gone, $gone), 'refreshed', 'paths, a file deleted, given twice: refreshed');
same_as_rebuild('paths, a file deleted, given twice');
is(query($stamps_agree), 't', 'paths, a file deleted: its stamp gone');

# an item that a file not refreshed links to comes, changes its id, and
# goes: the links that name it (by id, by file name) follow it
my $again = 'products/alpha/items/story/0000/ALP-USR-0300_again.md';
my $again_links = "SELECT string_agg(target_id || '=' || (target_uid IS NOT NULL), ',' ORDER BY target_id) FROM inc.links
	WHERE path = '$task1_rel' AND target_id IN ('ALP-USR-0300', 'ALP-USR-0300_again', 'ALP-USR-0301')";
rewrite($task1, '^The parser reads ', 'The parser reads [[ALP-USR-0300]], [[ALP-USR-0301]], ');
is(refresh_paths($task1_rel), 'refreshed', 'paths, links to an item not there yet: refreshed');
is(query($again_links), 'ALP-USR-0300=false,ALP-USR-0300_again=false,ALP-USR-0301=false', 'paths, links to an item not there yet: unresolved');
write_file("$backlog/$again", "---\nid: ALP-USR-0300\nuid: 019b8f52-0000-7000-8000-000000000300\n---\n# Again\n");
is(refresh_paths($again), 'refreshed', 'paths, the item comes: refreshed');
is(query($again_links), 'ALP-USR-0300=true,ALP-USR-0300_again=true,ALP-USR-0301=false',
	'paths, the item comes: links by its id and by its file name resolve');
same_as_rebuild('paths, the item comes');
rewrite("$backlog/$again", '^id: ALP-USR-0300$', 'id: ALP-USR-0301');
is(refresh_paths($again), 'refreshed', 'paths, the item changes its id: refreshed');
is(query($again_links), 'ALP-USR-0300=false,ALP-USR-0300_again=true,ALP-USR-0301=true',
	'paths, the item changes its id: the links follow');
same_as_rebuild('paths, the item changes its id');
unlink("$backlog/$again") or die "could not delete $again: $!";
is(refresh_paths($again), 'refreshed', 'paths, the item goes: refreshed');
is(query($again_links), 'ALP-USR-0300=false,ALP-USR-0300_again=false,ALP-USR-0301=false', 'paths, the item goes: no link resolves');
same_as_rebuild('paths, the item goes');

# a wikilink longer than an index row may be: the links' index on file
# names is a hash index, which holds any length
my $long = 'products/alpha/items/task/0000/ALP-TSK-0098_long-link.md';
srand(13);
my $noise = join('', map { ('a' .. 'z', '0' .. '9')[ int(rand(36)) ] } 1 .. 3000);    # no compression fits it in a btree row
write_file("$backlog/$long", "---\nid: ALP-TSK-0098\n---\n# Long\n\nSee [[$noise]].\n");
is(refresh_paths($long), 'refreshed', 'paths, a wikilink of 3,000 characters: refreshed');
is(refresh(undef, 1), 'refreshed', 'a wikilink of 3,000 characters: a full refresh too');
is(query("SELECT count(*) FROM inc.links WHERE path = '$long' AND length(target_id) = 3000"), '1',
	'a wikilink of 3,000 characters: its link');
same_as_rebuild('a wikilink of 3,000 characters');
unlink("$backlog/$long") or die;
is(refresh_paths($long), 'refreshed', 'paths, the long wikilink gone: refreshed');

# a directory given: every path below it, there or gone
my $subdir = 'topics/sub';
mkdir("$backlog/$subdir") or die;
write_file("$backlog/$subdir/$_.md", "# $_\n") for qw(one two three);
is(refresh_paths($subdir), 'refreshed', 'paths, a new directory: refreshed');
is(query("SELECT count(*) FROM inc.files WHERE path LIKE '$subdir/%'"), '3', 'paths, a new directory: its files');
unlink("$backlog/$subdir/two.md") or die;
rewrite("$backlog/$subdir/one.md", '^# one$', '# one again');
is(refresh_paths($subdir), 'refreshed', 'paths, a directory changed: refreshed');
same_as_rebuild('paths, a directory changed');
unlink("$backlog/$subdir/$_.md") for qw(one three);
rmdir("$backlog/$subdir") or die;
is(refresh_paths($subdir), 'refreshed', 'paths, a directory gone: refreshed');
is(query("SELECT count(*) FROM inc.files WHERE path LIKE '$subdir/%'"), '0', 'paths, a directory gone: no row below it');
same_as_rebuild('paths, a directory gone');

# a snapshot without the index in bytes' order (made before it was): the
# tables are scanned instead
query('DROP INDEX inc.files_path_bytes_idx');
rewrite($task1, '^state: Blocked$', 'state: Review');
is(refresh_paths($task1_rel), 'refreshed', 'paths, no index in bytes\' order: refreshed');
same_as_rebuild('paths, no index in bytes\' order');
query("SELECT kabsd_snapshot_indexes('inc')");

# a directory replaced by a file of the same name: the rows below the
# directory's name go, though the path given is a file now
my $dir = 'topics/notes.md';
mkdir("$backlog/$dir") or die "could not make $dir: $!";
write_file("$backlog/$dir/inner.md", "# inner\n");
is(refresh(), 'refreshed', 'paths, a directory named like a file: refreshed');
unlink("$backlog/$dir/inner.md") or die;
rmdir("$backlog/$dir") or die;
write_file("$backlog/$dir", "# notes\n");
is(refresh_paths($dir), 'refreshed', 'paths, a directory replaced by a file: refreshed');
is(query("SELECT count(*) FROM inc.files WHERE path LIKE 'topics/notes.md/%'"), '0',
	'paths, a directory replaced by a file: no row below it left');
same_as_rebuild('paths, a directory replaced by a file');
is(query($stamps_index_whole), '', 'paths: the index on the stamps has every stamp');

query("SELECT kabsd_detach('many'); SELECT kabsd_detach('inc')");
$node->stop;
done_testing();
