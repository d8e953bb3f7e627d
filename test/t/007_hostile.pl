# Copyright: kabsd_fdw authors.  Hostile files: each is listed in files
# with a clear error (or, where the data model says it is no error, with the
# rows it gives), the good file beside them still yields its rows, a long
# scan is cancelled promptly, a root removed or replaced by a file is an
# error, and the backend that read it all is the same one throughout: none
# of it crashes.  test/fixtures/make-hostile.sh builds the files that git
# cannot hold (FIFOs, sockets, permissions, links out of the root, very
# large files) in a temporary directory.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = PostgreSQL::Test::Utils::tempdir() . '/hostile';
system('sh', 'test/fixtures/make-hostile.sh', $dir) == 0 or die "could not build the hostile backlog";

# however the test ends, the temporary directory can be removed
END
{
	chmod(0700, "$dir/locked");
	chmod(0600, "$dir/products/evil/items/task/0000/unreadable.md");
}

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');

# one session reads everything: a crash would end it
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $backend = $session->query_safe('SELECT pg_backend_pid()');

sub query
{
	return $session->query_safe(shift);
}

# A query that must fail: its error output (BackgroundPsql keeps stderr
# until it is cleared).
sub error_of
{
	my $sql = shift;
	$session->query($sql);
	my $stderr = $session->{stderr};
	$session->{stderr} = '';
	return $stderr;
}

# The session's backend is the one it started with, and still answers a
# query that reads the good file.
sub still_alive
{
	my $after = shift;
	is(query('SELECT pg_backend_pid()'), $backend, "after $after: the same backend");
	is(query("SELECT id, state FROM hostile.items WHERE id = 'GOOD'"), 'GOOD|Fine',
		"after $after: the good file still reads");
}

# Rows of expected output, one a line, their paths given from the folder
# of the hostile files.
sub in_evil
{
	my $rows = shift;
	$rows =~ s{^}{products/evil/items/task/0000/}mg;
	chomp $rows;
	return $rows;
}

query("CREATE SERVER hostile FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$dir', max_file_size '1MB')");
query('CREATE SCHEMA hostile');
query('IMPORT FOREIGN SCHEMA kabsd FROM SERVER hostile INTO hostile');

# path|has_frontmatter|error, under products/evil/items/task/0000/
my $files = <<'EOF';
alias-bomb.md|t|invalid YAML in frontmatter at line 7, column 45: more than 100000 nodes after alias expansion
bad-utf8-body.md|f|file is not valid UTF-8 at byte offset 31
bad-utf8-frontmatter.md|f|file is not valid UTF-8 at byte offset 30
bom.md|t|
crlf.md|t|
dangling.md||dangling symbolic link
deep.md|t|invalid YAML in frontmatter at line 3, column 106: nesting deeper than 100 levels
duplicate-keys.md|t|
empty.md|f|
escape.md||symbolic link points outside root
fence-in-body.md|t|
fifo.md||not a regular file (a FIFO)
good.md|t|
inside-link.md|t|
list.md|t|frontmatter is not a mapping (it is a sequence)
lone-cr.md|t|
long-line.md|t|
loop-a.md||symbolic link loop
loop-b.md||symbolic link loop
nul.md|f|file contains a NUL byte at byte offset 20
only-fences.md|t|frontmatter is empty
open-no-close.md|t|frontmatter is not closed: no line "---" or "..." follows the opening "---"
oversized.md||file size 1200017 exceeds max_file_size (1048576 bytes)
recursive-alias.md|t|invalid YAML in frontmatter at line 3, column 8: recursive alias
scalar.md|t|frontmatter is not a mapping (it is a scalar)
shapes.md|t|key "uid": expected a UUID, got "12"; key "parent": expected text, got a list; key "tags": expected a list, got a mapping; key "created": expected a date, got "yesterday"; key "links": expected a mapping, got "none"; key "relates": expected a list, got "x"
socket.md||not a regular file (a socket)
syntax.md|t|invalid YAML in frontmatter at line 3, column 1: did not find expected ',' or ']' (while parsing a flow sequence)
tabs.md|t|invalid YAML in frontmatter at line 4, column 1: found character that cannot start any token (while scanning for the next token)
trailing-space-fence.md|t|invalid YAML in frontmatter at line 3, column 1: more than one YAML document
two-fences.md|t|
undefined-alias.md|t|invalid YAML in frontmatter at line 3, column 4: alias to an undefined anchor
unreadable.md||could not open file: Permission denied
EOF
is(query('SELECT path, has_frontmatter, error FROM hostile.files ORDER BY path'), in_evil($files),
	'every hostile file is listed, with its error or none');

is(query("SELECT count(*) FILTER (WHERE path LIKE 'locked/%'),
		count(*) FILTER (WHERE path LIKE '%ancestor/%'),
		count(*) FILTER (WHERE path LIKE 'escape-dir/%') FROM hostile.files"),
	'0|0|0', 'the unreadable directory is skipped; the links to an ancestor and out of root are not descended');

# only files that parsed are items; a link inside root is followed
is(query('SELECT id, uid, state FROM hostile.items ORDER BY path'), <<'EOF' =~ s/\n$//r, 'only the files that parsed are items');
BOM|019b8f52-0000-7000-8000-00000000d002|
CRLF|019b8f52-0000-7000-8000-00000000d003|
DUP|019b8f52-0000-7000-8000-00000000d001|Last
X||
GOOD|019b8f52-0000-7000-8000-00000000d007|Fine
DUP|019b8f52-0000-7000-8000-00000000d001|Last
LONECR|019b8f52-0000-7000-8000-00000000d004|
LONGLINE|019b8f52-0000-7000-8000-00000000d005|
SHAPES||
A||
EOF
my $sections = <<'EOF';
bom.md|Title
crlf.md|Title
fence-in-body.md|id: Y
good.md|Worklog
lone-cr.md|One
lone-cr.md|Three
EOF
is(query('SELECT path, heading FROM hostile.sections ORDER BY path, ordinal'), in_evil($sections),
	'sections of the files that parsed, CR and lone CR as line ends');
is(query('SELECT path, text FROM hostile.checklist ORDER BY path, ordinal'), in_evil('crlf.md|a'), 'the one checklist entry');
is(query('SELECT item_id, message FROM hostile.worklog ORDER BY path, ordinal'),
	'GOOD|Still here', 'the one worklog entry');
is(query("SELECT length(body) FROM hostile.items WHERE id = 'LONGLINE'"), '1000001', 'a line of 1 MB is read whole');

is(query('SELECT (SELECT count(*) FROM hostile.files), (SELECT count(*) FROM hostile.items),
		(SELECT count(*) FROM hostile.decisions), (SELECT count(*) FROM hostile.links),
		(SELECT count(*) FROM hostile.worklog), (SELECT count(*) FROM hostile.sections),
		(SELECT count(*) FROM hostile.checklist)'),
	'33|10|0|0|1|6|1', 'every table scans the hostile tree');
still_alive('the hostile files');

# a 20 MB body with 55,000 headings and 110,000 task entries
query("CREATE SERVER big FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$dir-big')");
query('CREATE SCHEMA big');
query('IMPORT FOREIGN SCHEMA kabsd FROM SERVER big INTO big');
is(query('SELECT size > 20000000 FROM big.files'), 't', 'the big file is over 20 MB');
is(query('SELECT count(*), max(level), max(ordinal) FROM big.sections'), '55000|2|55000', 'its 55,000 headings');
is(query('SELECT count(*), count(*) FILTER (WHERE checked) FROM big.checklist'), '110000|55000',
	'its 110,000 task entries');

# a long scan is cancelled promptly by statement_timeout
like(error_of("SET statement_timeout = '50ms';
		SELECT count(*) FROM big.sections a, big.checklist b WHERE a.ordinal = b.ordinal;
		RESET statement_timeout"),
	qr/ERROR:  canceling statement due to statement timeout/, 'statement_timeout cancels a long scan');
still_alive('the cancelled scan');

# root removed, or replaced by a file, after the server was created
my $gone = PostgreSQL::Test::Utils::tempdir() . '/gone';
mkdir($gone) or die "could not create $gone: $!";
query("CREATE SERVER gone FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$gone')");
query("CREATE FOREIGN TABLE gone_files (path text) SERVER gone OPTIONS (table 'files')");
is(query('SELECT count(*) FROM gone_files'), '0', 'an empty root has no files');
rmdir($gone) or die "could not remove $gone: $!";
like(error_of('SELECT count(*) FROM gone_files'),
	qr/ERROR:  could not open backlog root "\Q$gone\E": No such file or directory\n.*HINT:  Check that the directory exists and that the database server's operating system user can read it\./s,
	'a root removed is an error that names it');
open(my $fh, '>', $gone) or die "could not create $gone: $!";
close($fh);
like(error_of('SELECT count(*) FROM gone_files'),
	qr/ERROR:  backlog root "\Q$gone\E" is not a directory\n.*HINT:  Point the server's option "root" at the backlog directory\./s,
	'a root replaced by a file is an error that says so');
query('DROP FOREIGN TABLE gone_files; DROP SERVER gone');
still_alive('the root removed');

$session->quit;
ok(!$node->log_contains(qr/terminated by signal/), 'no server process was terminated by a signal');
$node->stop;

done_testing();
