# Copyright: kabsd_fdw authors.  A real git checkout under the watcher: a
# repository holds a backlog of 3,000 generated items besides the fixture;
# a second branch rewrites 1,000 of them, deletes 500, renames 500, adds
# 1,000 in new directories and renames a directory.  With the watcher
# watching, checking the branch out and back each give a few refreshes,
# not one per file, and a snapshot that is what a rebuild gives.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 'test/perl';
use KabsdWatch;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $repo = "$tmp/repo";
my $backlog = "$repo/backlog";
my $big = "$backlog/products/big/items/task";

# Git's configuration is this test's alone
$ENV{HOME} = $tmp;
$ENV{GIT_CONFIG_NOSYSTEM} = '1';
delete $ENV{$_} for qw(GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE);

sub git { system('git', '-C', $repo, @_) == 0 or die "git @_ failed"; }

# Item $i of the generated ones: its directory (100 a directory), its file.
sub big_dir { return sprintf('%s/%04d', $big, int(shift() / 100)); }

sub big_item
{
	my ($i, $title, $suffix) = @_;
	my $id = sprintf('BIG-TSK-%04d', $i);
	make_path(big_dir($i));
	save_file(sprintf('%s/%s_%s.md', big_dir($i), $id, $suffix // 'item'),
		"---\nid: $id\ntitle: $title\nstate: New\n---\n# $title\n\nItem $i.\n");
}

make_path($repo);
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
big_item($_, "Item $_") for 0 .. 2999;
git('init', '-q', '-b', 'main');
git('config', 'user.name', 'kabsd');
git('config', 'user.email', 'kabsd@example.org');
git('add', '-A');
git('commit', '-q', '-m', 'the backlog');

git('checkout', '-q', '-b', 'rewrite');
big_item($_, "Rewritten $_") for 0 .. 999;
unlink(sprintf('%s/BIG-TSK-%04d_item.md', big_dir($_), $_)) for 1000 .. 1499;
for my $i (1500 .. 1999)
{
	my $from = sprintf('%s/BIG-TSK-%04d_item.md', big_dir($i), $i);
	(my $to = $from) =~ s/_item\.md$/_renamed.md/;
	rename($from, $to) or die "could not rename $from: $!";
}
big_item($_, "Added $_") for 3000 .. 3999;
rename("$big/0029", "$big/0129") or die "could not rename a directory: $!";
git('add', '-A');
git('commit', '-q', '-m', 'a rewrite');
git('checkout', '-q', 'main');

my $node = watcher_node('checkout');
sub query { return $node->safe_psql('postgres', shift); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }

query('CREATE EXTENSION kabsd_fdw');
query(slurp_file('test/sql-include/snapshot.sql'));
query("SELECT kabsd_attach('$backlog', 'w', watch => true)");
wait_for("SELECT pending = 0 AND NOT stale FROM kabsd_status('w')", 'watched, first refresh done');

# Checks $branch out, waits until the snapshot follows the files (nothing
# pending, nothing added, changed or removed since the last refresh), and
# checks the refreshes it took and the snapshot.
sub checkout
{
	my ($branch, $items, $rewritten) = @_;
	my $since = query('SELECT now()');
	git('checkout', '-q', $branch);
	wait_for("SELECT pending = 0 AND NOT stale
		AND (SELECT count(*) FROM w.items WHERE product = 'big') = $items FROM kabsd_status('w')",
		"git checkout $branch: the snapshot settles");
	my $refreshes = query("SELECT count(*) FROM kabsd.refresh_history WHERE name = 'w' AND started_at >= '$since'");
	cmp_ok($refreshes, '<=', 10, "git checkout $branch: a few refreshes ($refreshes), not one per file");
	cmp_ok($refreshes, '>=', 1, "git checkout $branch: refreshed");
	is(query("SELECT count(*) FROM w.items WHERE title LIKE 'Rewritten %'"), $rewritten,
		"git checkout $branch: $rewritten items rewritten");
	is(query("BEGIN; SELECT matches_rebuild('w'); ROLLBACK;"), 'same as a rebuild',
		"git checkout $branch: the snapshot is what a rebuild gives");
}

checkout('rewrite', 3500, 1000);
is(query("SELECT count(*) FILTER (WHERE path ~ '/0029/') || ' ' || count(*) FILTER (WHERE path ~ '/0129/') FROM w.files"),
	'0 100', 'the directory renamed is in the snapshot under its new name only');
checkout('main', 3000, 0);

$node->stop;
done_testing();
