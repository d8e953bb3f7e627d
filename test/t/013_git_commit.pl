# Copyright: kabsd_fdw authors.  Each refresh records the Git commit checked
# out in the repository holding the backlog root, read from Git's files:
# in the refresh history, the backlog's refreshes table (which a copy
# receives) and kabsd_status(); a new commit that changes no backlog file
# is recorded too; NULL outside a Git work tree.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Temp;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $repo = "$tmp/repo";
mkdir $repo or die "could not create $repo: $!";
system('cp', '-R', 'test/fixtures/backlog', "$repo/backlog") == 0
	or die "could not copy the fixture backlog";
sub git
{
	my ($out, $err);
	IPC::Run::run(['git', '-C', $repo, '-c', 'user.name=kabsd',
			'-c', 'user.email=kabsd@example.com', @_], '>', \$out, '2>', \$err)
	  or die "git @_ failed: $err";
	chomp $out;
	return $out;
}
git('init', '-q', '-b', 'main');
git('add', '-A');
git('commit', '-q', '-m', 'backlog');
my $first = git('rev-parse', 'HEAD');

# a root in no repository: the walk up from a directory of its own finds
# no .git (tempdir is below the source tree, which may be a Git checkout,
# so /tmp is used for this one)
my $bare = File::Temp::tempdir('kabsd-nogit-XXXX', DIR => '/tmp', CLEANUP => 1);
system('cp', '-R', 'test/fixtures/backlog', "$bare/backlog") == 0
	or die "could not copy the fixture backlog";

my $node = PostgreSQL::Test::Cluster->new('git');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
$node->safe_psql('postgres', "SELECT kabsd_attach('$repo/backlog', 'backlog')");

is($node->safe_psql('postgres', "SELECT git_commit FROM kabsd.refresh_history WHERE name = 'backlog'"),
	$first, 'the first refresh records the commit checked out');
is($node->safe_psql('postgres', 'SELECT git_commit FROM backlog.refreshes'),
	$first, 'so does the backlog\'s own refreshes table');
is($node->safe_psql('postgres', "SELECT git_commit FROM kabsd_status('backlog')"),
	$first, 'and kabsd_status()');

# a commit outside the backlog: no file of it changed, the commit did
open(my $fh, '>', "$repo/CHANGES.md") or die;
print $fh "# changes\n";
close $fh;
git('add', 'CHANGES.md');
git('commit', '-q', '-m', 'outside the backlog');
my $second = git('rev-parse', 'HEAD');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_refresh('backlog')"),
	'unchanged', 'a commit that changes no backlog file leaves the snapshot unchanged');
is($node->safe_psql('postgres', "SELECT git_commit FROM kabsd.refresh_history ORDER BY id DESC LIMIT 1"),
	$second, 'and that refresh records the new commit');
is($node->safe_psql('postgres', "SELECT git_commit FROM kabsd_status('backlog')"),
	$second, 'kabsd_status() follows it');

# a branch switched, refs packed: read through packed-refs
git('checkout', '-q', '-b', 'other', $first);
git('pack-refs', '--all');
$node->safe_psql('postgres', "SELECT kabsd_refresh('backlog')");
is($node->safe_psql('postgres', "SELECT git_commit FROM kabsd.backlogs WHERE name = 'backlog'"),
	$first, 'a branch switch, refs packed: the commit checked out now');

# a repository that cannot be read is no reason to fail the refresh: it
# says why, and records no commit
open(my $head, '>', "$repo/.git/HEAD") or die "could not write HEAD: $!";
print $head "not a ref\n";
close $head;
my ($bad_ret, $bad_out, $bad_err) = $node->psql('postgres', "SELECT status FROM kabsd_refresh('backlog')");
is($bad_ret, 0, 'a broken HEAD does not fail the refresh');
like($bad_err, qr/WARNING:  could not read the Git commit of backlog root/, 'it says why');
is($node->safe_psql('postgres', "SELECT git_commit IS NULL FROM kabsd.refresh_history ORDER BY id DESC LIMIT 1"),
	't', 'and records no commit');
open($head, '>', "$repo/.git/HEAD") or die "could not write HEAD: $!";
print $head "ref: refs/heads/other\n";
close $head;

$node->safe_psql('postgres', "SELECT kabsd_attach('$bare/backlog', 'nogit')");
is($node->safe_psql('postgres', "SELECT git_commit IS NULL FROM kabsd_status('nogit')"),
	't', 'outside a Git work tree the commit is NULL');
my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT status FROM kabsd_refresh('nogit', full => true)");
is($stderr, '', 'and the refresh says nothing about it');

$node->stop;
done_testing();
