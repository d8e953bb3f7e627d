# Copyright: kabsd_fdw authors.  What the watcher's TAP tests share: a
# cluster whose watcher watches database postgres, and files written as an
# editor that saves in place writes them.
package KabsdWatch;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(watcher_node save_file item);

# A started cluster named $name with kabsd_fdw preloaded and its watcher on
# database postgres; $conf, when given, is added to postgresql.conf.
sub watcher_node
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'kabsd_fdw'\nkabsd_fdw.watch_database = 'postgres'\n" . ($conf // ''));
	$node->start;
	return $node;
}

# Writes a file in place, as a save that keeps the inode does.
sub save_file
{
	my ($file, $text) = @_;
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh $text;
	close($fh) or die "could not write $file: $!";
}

# The text of an item file: id, title, state New.
sub item
{
	my ($id, $title) = @_;
	return "---\nid: $id\ntitle: $title\nstate: New\n---\n# $title\n";
}

1;
