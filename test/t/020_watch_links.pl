# Copyright: kabsd_fdw authors.  Symbolic links to directories inside the
# root, which the walk follows (src/core/walk.c), under the watcher: a
# product that is a link to a directory elsewhere in the root is watched
# through it.  An edit, a new file, a new directory at the target show
# under the link's path; a link made, removed, a dangling link whose target
# appears, a target moved away and back (no event at the link) each reach
# the snapshot by the paths that changed, never by a walk of the whole
# tree, and the snapshot is then what a rebuild gives.  Links the walk does
# not follow (out of the root, to an ancestor) are not followed either.
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
my $backlog = "$tmp/backlog";
PostgreSQL::Test::RecursiveCopy::copypath('test/fixtures/backlog', $backlog);
my $shared = "$backlog/shared/items/task";

sub link_ok { my ($to, $at) = @_; symlink($to, "$backlog/$at") or die "could not link $at: $!"; }

make_path("$shared/0000", "$tmp/outside/items/task/0000");
save_file("$shared/0000/SHR-TSK-0001_shared.md", item('SHR-TSK-0001', 'Shared'));
save_file("$tmp/outside/items/task/0000/OUT-TSK-0001_out.md", item('OUT-TSK-0001', 'Outside'));
link_ok('../shared', 'products/gamma');                 # followed
link_ok("$tmp/outside", 'products/outside');           # out of the root
link_ok('..', 'products/alpha/items/up');              # to an ancestor
link_ok('../later', 'products/later');                 # dangling, for now

my $node = watcher_node('links', "log_min_messages = debug1\n");
sub query { return $node->safe_psql('postgres', shift); }
sub wait_for { my ($sql, $what) = @_; ok($node->poll_query_until('postgres', $sql), $what); }

# The items of product $product in the snapshot, as "id:title" sorted.
sub items_of
{
	return query("SELECT coalesce(string_agg(id || ':' || title, ' ' ORDER BY id), '') FROM w.items WHERE product = '"
		  . shift() . "'");
}

# Waits until product $product has the items $items; then the snapshot
# must be what a rebuild gives.
sub wait_items
{
	my ($product, $items, $what) = @_;
	wait_for("SELECT coalesce(string_agg(id || ':' || title, ' ' ORDER BY id), '') = '$items'
		FROM w.items WHERE product = '$product'", "$what: the snapshot shows it");
	wait_for("SELECT pending = 0 AND NOT stale FROM kabsd_status('w')", "$what: the snapshot settles");
	is(query("BEGIN; SELECT matches_rebuild('w'); ROLLBACK;"), 'same as a rebuild',
		"$what: the snapshot is what a rebuild gives");
}

query('CREATE EXTENSION kabsd_fdw');
query(slurp_file('test/sql-include/snapshot.sql'));
query("SELECT kabsd_attach('$backlog', 'w', watch => true)");
wait_for("SELECT pending = 0 FROM kabsd_status('w')", 'watched, first refresh done');
is(items_of('gamma'), 'SHR-TSK-0001:Shared', 'the walk follows a link to a directory inside the root');
is(items_of('outside'), '', 'not a link out of the root');
is(query("SELECT count(*) FROM w.files WHERE path ~ '^products/alpha/items/up/'"), '0', 'nor one to an ancestor');
my $log = -s $node->logfile;

# an edit at the target: refreshed at both its paths
my $text = slurp_file("$shared/0000/SHR-TSK-0001_shared.md");
$text =~ s/^title: .*$/title: Edited/m or die 'no title';
save_file("$shared/0000/SHR-TSK-0001_shared.md", $text);
wait_items('gamma', 'SHR-TSK-0001:Edited', 'an edit at the target of a link');
ok($node->log_contains(
		qr/refreshed backlog "w", 2 paths: products\/gamma\/items\/task\/0000\/SHR-TSK-0001_shared\.md shared\/items\/task\/0000\/SHR-TSK-0001_shared\.md/,
		$log),
	'the edit was refreshed at the link\'s path and the target\'s');

# a new file, a new directory, a file in it later
save_file("$shared/0000/SHR-TSK-0002_new.md", item('SHR-TSK-0002', 'New'));
wait_items('gamma', 'SHR-TSK-0001:Edited SHR-TSK-0002:New', 'a new file at the target');
make_path("$shared/0001");
save_file("$shared/0001/SHR-TSK-0003_dir.md", item('SHR-TSK-0003', 'Dir'));
wait_items('gamma', 'SHR-TSK-0001:Edited SHR-TSK-0002:New SHR-TSK-0003:Dir', 'a new directory at the target');
save_file("$shared/0001/SHR-TSK-0004_later.md", item('SHR-TSK-0004', 'Later'));
wait_items('gamma', 'SHR-TSK-0001:Edited SHR-TSK-0002:New SHR-TSK-0003:Dir SHR-TSK-0004:Later',
	'a file added later in the new directory');
my $all = items_of('gamma');

# a link made, then removed
link_ok('../shared', 'products/delta');
wait_items('delta', $all, 'a link made');
save_file("$shared/0001/SHR-TSK-0005_both.md", item('SHR-TSK-0005', 'Both'));
$all .= ' SHR-TSK-0005:Both';
wait_items('delta', $all, 'a file added behind two links: under the new one');
is(items_of('gamma'), $all, 'and under the other');
unlink("$backlog/products/delta") or die "could not remove the link: $!";
wait_items('delta', '', 'a link removed');

# a dangling link whose target appears
make_path("$backlog/later/items/task/0000");
save_file("$backlog/later/items/task/0000/LAT-TSK-0001_later.md", item('LAT-TSK-0001', 'Later'));
wait_items('later', 'LAT-TSK-0001:Later', 'the target of a dangling link made');
save_file("$backlog/later/items/task/0000/LAT-TSK-0002_more.md", item('LAT-TSK-0002', 'More'));
wait_items('later', 'LAT-TSK-0001:Later LAT-TSK-0002:More', 'and watched through the link');

# the target moved away (the link dangles) and back: no event at the link
rename("$backlog/shared", "$backlog/shared.moved") or die "could not move: $!";
wait_items('gamma', '', 'the target of a link moved away');
rename("$backlog/shared.moved", "$backlog/shared") or die "could not move back: $!";
wait_items('gamma', $all, 'the target of a link moved back');
save_file("$shared/0000/SHR-TSK-0006_back.md", item('SHR-TSK-0006', 'Back'));
wait_items('gamma', "$all SHR-TSK-0006:Back", 'the target moved back is watched through the link');

ok(!$node->log_contains(qr/full refresh of backlog "w"/, $log),
	'every change was refreshed by its paths, none by a walk of the whole tree');

$node->stop;
done_testing();
