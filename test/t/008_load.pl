
# Copyright: kabsd_fdw authors.  Eight pgbench clients query the live and
# the snapshot tables while kabsd_refresh() runs again and again and files
# change underneath: no query fails, nothing deadlocks, every refresh
# succeeds (its status, its messages and the refresh history say so), the
# snapshot never misses an item that the files had before and after (the
# stable items are always all there), and after a last refresh it is what
# the files are.
use strict;
use warnings;
use File::Find;
use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $refreshes = 25;	# refreshes in a row during the load
my $edits = 40;		# items changed, and items added, during the load

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $dir = "$tmp/backlog";
system('perl', 'bench/gen_corpus.pl', $dir, 600, 7) == 0 or die "could not generate the backlog";

my $node = PostgreSQL::Test::Cluster->new('load');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_attach('$dir', 'lb')"), 'rebuilt', 'attached');
my $stable = $node->safe_psql('postgres', 'SELECT count(*) FROM lb.items');

# Replaces a file's contents as an editor or git does: a new file renamed
# over the old one, so that no reader ever sees it half written.
sub replace_file
{
	my ($path, $text) = @_;
	append_to_file("$path.tmp", $text);
	rename("$path.tmp", $path) or die "could not rename \"$path.tmp\": $!";
}

# the items the editor changes: every third one of a product
my @items;
find(sub { push @items, $File::Find::name if /\.md$/ && !/\.index\.md$/ }, "$dir/products/atlas/items");
@items = sort @items;
die "too few items in the backlog" if @items < 3 * $edits;

# The editor, a child process: changes the state of existing items and adds
# new ones while the refreshes and the queries run.  It leaves with _exit,
# so that the test's END blocks run in the parent only.
my $editor = fork() // die "could not fork: $!";
if ($editor == 0)
{
	for my $i (1 .. $edits)
	{
		my $item = $items[3 * $i - 1];
		my $text = slurp_file($item);
		$text =~ s/^state: .*$/state: Done/m;
		replace_file($item, $text);
		replace_file("$dir/products/atlas/items/task/0000/NEW-$i.md",
			sprintf("---\nid: NEW-%d\nuid: 019b8f52-0000-7000-8000-%012d\n---\n", $i, $i));
		usleep(50_000);
	}
	POSIX::_exit(0);
}

# The refresher, a psql in the background: refreshes one after the other,
# each printing its status.  A failed refresh raises an ERROR, which ends
# the script, and is recorded in the refresh history all the same.
append_to_file("$tmp/refresh.sql", "SELECT status FROM kabsd_refresh('lb');\n" x $refreshes);
my $refresher = IPC::Run::start(
	[
		$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr('postgres'), '-f', "$tmp/refresh.sql"
	],
	'>', "$tmp/refresh.out", '2>', "$tmp/refresh.err");

# The clients, meanwhile.  Each transaction first checks that the snapshot
# still has every stable item: if not, 1/0 makes it fail.
$node->pgbench(
	'-n -c 8 -j 2 -T 15',
	0,
	[
		qr/number of failed transactions: 0 /,
		qr/number of transactions actually processed: [1-9]/
	],
	# no client query failed, deadlocked or was aborted
	[qr/\A(?!.*(?:ERROR|deadlock|aborted))/s],
	'clients query the tables during refreshes',
	{
		'008_load_queries' => qq{
SELECT count(*) AS n FROM lb.items \\gset
\\if :n < $stable
SELECT 'snapshot lost items' AS failure, 1/0;
\\endif
SELECT count(*) FROM lb.links WHERE target_uid IS NOT NULL;
SELECT id, state FROM lb.items WHERE state = 'Done' LIMIT 5;
SELECT count(*) FROM lb_live.items WHERE product = 'atlas';
SELECT count(*) FROM lb.worklog w JOIN lb.items i ON i.uid = w.item_uid;
}
	},
	'postgres');

waitpid($editor, 0);
is($?, 0, 'the editor changed and added its files');
ok($refresher->finish, 'the refresher ran to its end');
my @statuses = split(/\n/, slurp_file("$tmp/refresh.out"));
is(scalar(@statuses), $refreshes, 'every refresh under load returned a row');
is(join(',', grep { !/^(refreshed|unchanged|rebuilt)$/ } @statuses), '',
	'every refresh under load succeeded');
is(slurp_file("$tmp/refresh.err"), '', 'no refresh under load raised a WARNING or an ERROR');
ok(scalar(grep { $_ eq 'refreshed' } @statuses), 'some refreshes under load brought changes in');

my (undef, $status, $stderr) = $node->psql('postgres', "SELECT status FROM kabsd_refresh('lb')");
like($status, qr/^(refreshed|unchanged)$/, 'the last refresh succeeded');
is($stderr, '', 'without a WARNING or an ERROR');
is($node->safe_psql('postgres', 'SELECT count(*) FROM lb.items'), $stable + $edits,
	'after the last refresh the snapshot has every item of the files');
my $states = "SELECT md5(string_agg(path || ':' || coalesce(state, ''), ',' ORDER BY path)) FROM %s.items";
is($node->safe_psql('postgres', sprintf($states, 'lb')), $node->safe_psql('postgres', sprintf($states, 'lb_live')),
	'and every state the files have');
is($node->safe_psql('postgres', "SELECT count(*) FROM kabsd.refresh_history WHERE name = 'lb' AND status = 'failed'"),
	0, 'no failed refresh in the history');
is($node->safe_psql('postgres', "SELECT count(*) FROM kabsd.refresh_history WHERE name = 'lb'"),
	$refreshes + 2, 'the history records the attach and every refresh');

$node->stop;
done_testing();
