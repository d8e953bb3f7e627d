# Copyright: kabsd_fdw authors.  Two refreshes of one backlog never run at
# once: the second waits for the first to commit, then finds nothing
# changed.  A reader is never blocked by a refresh in progress and sees the
# old snapshot until it commits.  Every refresh is announced on the channel
# kabsd_refresh when it commits.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $backlog = PostgreSQL::Test::Utils::tempdir() . '/backlog';
my $item = "$backlog/products/p/items/t/ISO-1.md";
sub write_item
{
	my ($state) = @_;
	# written aside, then renamed over the file, as an editor saves it
	open(my $fh, '>', "$item.tmp") or die "could not write $item.tmp: $!";
	print $fh "---\nid: ISO-1\nuid: 019b8f52-0000-7000-8000-0000000000e1\nstate: $state\n---\n";
	close($fh) or die;
	rename("$item.tmp", $item) or die "could not rename to $item: $!";
}
system('mkdir', '-p', "$backlog/products/p/items/t") == 0 or die;
write_item('Old');

my $node = PostgreSQL::Test::Cluster->new('concurrency');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION kabsd_fdw');
is($node->safe_psql('postgres', "SELECT status FROM kabsd_attach('$backlog', 'iso')"),
	'rebuilt', 'attached');

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN kabsd_refresh');
my $first = $node->background_psql('postgres');
my $second = $node->background_psql('postgres');
my $second_pid = $second->query_safe('SELECT pg_backend_pid()');

# the first refresh writes the edit and stays open
write_item('New');
$first->query_safe('BEGIN');
is($first->query_safe("SELECT name, items, status FROM kabsd_refresh('iso')"),
	'iso|1|refreshed', 'the first refresh writes the edit, not committed yet');

# a reader is not blocked and sees the committed snapshot
is($listener->query_safe('SELECT id, state FROM iso.items'), 'ISO-1|Old',
	'a reader during the refresh is not blocked and sees the old snapshot');

# the second refresh waits for the first
$second->query_until(qr/started/,
	"\\echo started\nSELECT name, items, status FROM kabsd_refresh('iso');\n");
ok($node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' AND wait_event = 'advisory' FROM pg_stat_activity WHERE pid = $second_pid"),
	'the second refresh waits for the first');
is($node->safe_psql('postgres', "SELECT count(*) FROM kabsd.refresh_history WHERE name = 'iso'"),
	'1', 'only the attach\'s refresh is on record meanwhile');

$first->query_safe('COMMIT');
like($second->query_safe("SELECT 'after'"), qr/^iso\|1\|unchanged\nafter$/,
	'once the first commits, the second finds nothing changed');
is($node->safe_psql('postgres', 'SELECT id, state FROM iso.items'), 'ISO-1|New',
	'a reader sees the new snapshot after the commit');
my ($notices) = $listener->query('SELECT 1');
my @notified = ($notices =~ /Asynchronous notification "kabsd_refresh" with payload "(.*)" received/g);
is(scalar(@notified), 2, 'both refreshes were announced on commit');
like($notified[0], qr/"status" : "refreshed"/, 'the first as refreshed');
like($notified[1], qr/"status" : "unchanged"/, 'the second as unchanged');

$listener->quit;
$first->quit;
$second->quit;
$node->stop;
done_testing();
