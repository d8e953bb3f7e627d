# Copyright: kabsd_fdw authors.  The Git hooks of scripts/kabsd-git-hooks,
# in a real repository that holds a backlog (a copy of the fixture): a
# commit, a branch switch, a merge and an amend each reach the snapshot
# within seconds, while every Git command returns at once, its output
# captured through a pipe (so a refresh left holding Git's descriptors
# would show as a wait) and its refresh made slow on purpose.  The hooks
# that were there run first and keep their standard input; a burst of
# commits gives fewer refreshes than commits; with the database stopped a
# commit still succeeds at once; installing twice installs once;
# core.hooksPath is followed; uninstalling puts the old hooks back.
use strict;
use warnings;
use Cwd qw(abs_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $script = abs_path('scripts/kabsd-git-hooks');
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $repo = "$tmp/repo";
my $hooks = "$repo/.git/hooks";
my $task = "$repo/backlog/products/alpha/items/task/0000/ALP-TSK-0001_parse-frontmatter.md";
my $node = PostgreSQL::Test::Cluster->new('git_hooks');

# Git's configuration is this test's alone
$ENV{HOME} = $tmp;
$ENV{GIT_CONFIG_NOSYSTEM} = '1';
$ENV{GIT_AUTHOR_NAME} = $ENV{GIT_COMMITTER_NAME} = 'kabsd';
$ENV{GIT_AUTHOR_EMAIL} = $ENV{GIT_COMMITTER_EMAIL} = 'kabsd@example.org';
delete $ENV{$_} for qw(GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE);

# git in the repository, its hooks off: the set-up, not what is tested
sub git_quiet
{
	system('git', '-C', $repo, '-c', 'core.hooksPath=/dev/null', @_) == 0
	  or die "git @_ failed";
}

# git in the repository with its hooks, output read from a pipe to the end:
# succeeds, and returns before the refresh it starts could have ended
sub git_ok
{
	my ($what, @args) = @_;
	my $start = time;
	my $cmd = join(' ', 'git', '-C', $repo, map { "'$_'" } @args);
	my $out = `$cmd 2>&1`;
	my $rc = $?;
	my $took = time - $start;
	is($rc, 0, "$what: git @args succeeds") or diag($out);
	cmp_ok($took, '<', 1.5, "$what: git @args returns at once");
	return $out;
}

# The task's state in its file (as an editor saves it).
sub set_state
{
	my $state = shift;
	my $text = slurp_file($task);
	$text =~ s/^state: \w+$/state: $state/m or die "no state line in $task";
	open(my $fh, '>', $task) or die "could not write $task: $!";
	print $fh $text;
	close($fh);
}

# Waits for the snapshot to show the task in $state; says how long it took.
sub snapshot_shows
{
	my ($state, $what) = @_;
	my $start = time;
	ok($node->poll_query_until('postgres',
			"SELECT state = '$state' FROM backlog.items WHERE title = 'Parse frontmatter'"),
		"$what: the snapshot shows $state");
	cmp_ok(time - $start, '<', 15, "$what: within seconds");
}

# Waits until no refresh runs or is asked for.
sub hooks_idle
{
	for (1 .. 60)
	{
		return if !-e "$repo/.git/kabsd-hooks.lock" && !-e "$repo/.git/kabsd-hooks.pending";
		sleep(1);
	}
	die 'the hooks\' refreshes never ended';
}

sub refreshes
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM kabsd.refresh_history');
}

# A repository holding the backlog, one commit
mkdir($repo) or die;
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', "$repo/backlog");
system('git', 'init', '-q', '-b', 'main', $repo) == 0 or die 'git init failed';
git_quiet('add', 'backlog');
git_quiet('commit', '-q', '-m', 'the backlog');

$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_attach('$repo/backlog', 'backlog')"),
	'rebuilt', 'attached');
is($node->safe_psql('postgres', "SELECT state FROM backlog.items WHERE title = 'Parse frontmatter'"),
	'InProgress', 'the snapshot before any hook');

# Hooks of the repository's own: a post-commit that counts its runs, a
# post-rewrite that keeps what Git gives it on standard input
my $old_commit = "#!/bin/sh\necho \"\$\@\" >> '$tmp/post-commit.runs'\nexit 0\n";
my $old_rewrite = "#!/bin/sh\ncat > '$tmp/post-rewrite.stdin'\n";
append_to_file("$hooks/post-commit", $old_commit);
append_to_file("$hooks/post-rewrite", $old_rewrite);
chmod(0755, "$hooks/post-commit", "$hooks/post-rewrite") or die;

# Refreshes made slow: a Git command that waited for one would show it
chomp(my $psql = `sh -c 'command -v psql'`);
$psql ne '' or die 'psql is not on PATH';
my $slow = "$tmp/slow-psql";
append_to_file($slow, "#!/bin/sh\nsleep 2\nexec '$psql' \"\$\@\"\n");
chmod(0755, $slow) or die;

# Installed twice, with a conninfo string: once
for my $round (1, 2)
{
	my ($out, $err);
	ok(IPC::Run::run([ $script, '--repo', $repo, '--backlog', 'backlog', '--psql', $slow,
				$node->connstr('postgres') ], '>', \$out, '2>', \$err),
		"install, round $round") or diag($err);
}
is(slurp_file("$hooks/post-commit.kabsd-chained"), $old_commit,
	'the old post-commit is kept as it was, once');
ok(!-e "$hooks/post-checkout.kabsd-chained", 'nothing chained where no hook was');
for my $h (qw(post-commit post-merge post-checkout post-rewrite))
{
	my $text = slurp_file("$hooks/$h");
	is(scalar(() = $text =~ /^# kabsd-git-hooks: installed hook$/mg), 1, "$h: installed once");
	ok(-x "$hooks/$h", "$h: executable");
}

# A commit
set_state('Done');
git_ok('commit', 'commit', '-q', '-m', 'done', '--', $task);
snapshot_shows('Done', 'commit');
is(scalar(() = slurp_file("$tmp/post-commit.runs") =~ /\n/g), 1, 'the old post-commit ran');

# A branch switch (the branch made with the hooks off)
git_quiet('checkout', '-q', '-b', 'other');
set_state('Blocked');
git_quiet('commit', '-q', '-m', 'blocked', '--', $task);
git_ok('branch switch', 'checkout', '-q', 'main');
is(slurp_file($task) =~ /^state: Done$/m, 1, 'main has the task done');
git_ok('branch switch', 'checkout', '-q', 'other');
snapshot_shows('Blocked', 'branch switch');

# A checkout of files is no branch switch: no refresh
hooks_idle();
my $before = refreshes();
git_ok('file checkout', 'checkout', '-q', 'main', '--', $task);
sleep(3);
is(refreshes(), $before, 'a checkout of files starts no refresh');
git_quiet('checkout', '-q', 'other', '--', $task);

# A merge (fast-forward), from main
hooks_idle();
git_quiet('checkout', '-q', 'main');
git_quiet('checkout', '-q', '-b', 'ahead');
set_state('Review');
git_quiet('commit', '-q', '-m', 'review', '--', $task);
git_quiet('checkout', '-q', 'main');
snapshot_shows('Blocked', 'before the merge, still');
git_ok('merge', 'merge', '-q', '--ff-only', 'ahead');
snapshot_shows('Review', 'merge');

# An amend: post-rewrite, and the old hook still reads its standard input
set_state('Amended');
git_ok('amend', 'commit', '-q', '--amend', '-m', 'amended', '--', $task);
snapshot_shows('Amended', 'amend');
like(slurp_file("$tmp/post-rewrite.stdin"), qr/^[0-9a-f]{40} [0-9a-f]{40}\n$/,
	'the old post-rewrite read the rewritten commits on its standard input');

# A burst of commits: fewer refreshes than commits, the last one shown
hooks_idle();
$before = refreshes();
for my $i (1 .. 4)
{
	set_state("Burst$i");
	git_ok("burst $i", 'commit', '-q', '-m', "burst $i", '--', $task);
}
snapshot_shows('Burst4', 'burst');
hooks_idle();
sleep(3);	# longer than a refresh: none still running unseen
my $burst = refreshes() - $before;
cmp_ok($burst, '<', 4, "four commits gave $burst refreshes");
cmp_ok($burst, '>=', 1, 'and at least one');

# The database stopped: the commit succeeds at once all the same
hooks_idle();
$node->stop;
set_state('Offline');
git_ok('database down', 'commit', '-q', '-m', 'offline', '--', $task);
my $log = "$repo/.git/kabsd-hooks.log";
my $waited = 0;
until (slurp_file($log) =~ /could not connect|connection to server .* failed/ or $waited++ > 20)
{
	sleep(1);
}
like(slurp_file($log), qr/connection to server .* failed/, 'the failed refresh is in the log');
$node->start;
git_ok('database back', 'commit', '-q', '--allow-empty', '-m', 'back');
snapshot_shows('Offline', 'database back');

# core.hooksPath is where the hooks go; psql options this time
git_quiet('config', 'core.hooksPath', '.githooks');
ok(IPC::Run::run([ $script, '--repo', "$repo/backlog", '--', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres' ], '>', \my $out), 'install into core.hooksPath, from a subdirectory');
ok(-x "$repo/.githooks/post-commit", 'the hooks are in core.hooksPath');
set_state('HooksPath');
git_ok('core.hooksPath', 'commit', '-q', '-m', 'hooks path', '--', $task);
snapshot_shows('HooksPath', 'core.hooksPath');
ok(IPC::Run::run([ $script, '--repo', $repo, '--uninstall' ], '>', \$out), 'uninstall from core.hooksPath');
ok(!-e "$repo/.githooks/post-commit", 'gone from core.hooksPath');
git_quiet('config', '--unset', 'core.hooksPath');

# Uninstall: the old hooks back, nothing of ours left
ok(IPC::Run::run([ $script, '--repo', $repo, '--uninstall' ], '>', \$out), 'uninstall');
is(slurp_file("$hooks/post-commit"), $old_commit, 'the old post-commit is back');
is(slurp_file("$hooks/post-rewrite"), $old_rewrite, 'the old post-rewrite is back');
ok(!-e "$hooks/$_", "$_ is gone") for qw(post-merge post-checkout post-commit.kabsd-chained post-rewrite.kabsd-chained);
ok(IPC::Run::run([ $script, '--repo', $repo, '--uninstall' ], '>', \$out), 'uninstall again: nothing to do');
is(slurp_file("$hooks/post-commit"), $old_commit, 'and the old post-commit stays');

my $runs = () = slurp_file("$tmp/post-commit.runs") =~ /\n/g;
hooks_idle();
$before = refreshes();
set_state('Unhooked');
git_ok('uninstalled', 'commit', '-q', '-m', 'unhooked', '--', $task);
is(scalar(() = slurp_file("$tmp/post-commit.runs") =~ /\n/g), $runs + 1, 'the old post-commit runs alone');
sleep(3);
is(refreshes(), $before, 'no refresh after uninstall');

$node->stop;
done_testing();
