
# Copyright: kabsd_fdw authors.  A scan keeps the backend's memory flat in
# the number of files: for each table, the peak resident size of a fresh
# backend that scanned about 34,000 files is at most 4 MB above that of one
# that scanned about 1,400.  A generous bound, not a benchmark (the two
# differ by less than 1 MB), yet a scan that kept 130 bytes per file would
# go past it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# what the big scan may add to the small one's peak, in kB
my $bound = 4 * 1024;

my $tmp = PostgreSQL::Test::Utils::tempdir();
my $small = "$tmp/small";
my $big = "$tmp/big";
system('perl', 'bench/gen_corpus.pl', $small, 1000, 5) == 0 or die "could not generate the small backlog";
system('perl', 'bench/gen_corpus.pl', $big, 25000, 5) == 0 or die "could not generate the big backlog";

my $node = PostgreSQL::Test::Cluster->new('memory');
$node->init;
$node->start;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION kabsd_fdw;
	CREATE SERVER small FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$small');
	CREATE SERVER big FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$big');
	CREATE SCHEMA s;
	CREATE SCHEMA b;
	IMPORT FOREIGN SCHEMA kabsd FROM SERVER small INTO s;
	IMPORT FOREIGN SCHEMA kabsd FROM SERVER big INTO b;
});
my $nsmall = $node->safe_psql('postgres', 'SELECT count(*) FROM s.files');
my $nbig = $node->safe_psql('postgres', 'SELECT count(*) FROM b.files');
cmp_ok($nbig, '>=', 20 * $nsmall, "the big backlog has $nbig files, the small one $nsmall");

# The peak resident size (kB) of a fresh backend after one query, read from
# /proc while its session is still open.
sub peak_rss
{
	my ($query) = @_;
	my $session = $node->background_psql('postgres');
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_safe($query);
	my $status = slurp_file("/proc/$pid/status");
	$session->quit;
	$status =~ /^VmHWM:\s+(\d+) kB$/m or die "no VmHWM in /proc/$pid/status";
	return $1;
}

for my $t (qw(files items sections checklist links worklog))
{
	# the whole row is built, so every column is read
	my $a = peak_rss("SELECT count(*), max(length(x::text)) FROM s.$t x");
	my $b = peak_rss("SELECT count(*), max(length(x::text)) FROM b.$t x");
	note("$t: peak RSS $a kB after $nsmall files, $b kB after $nbig files");
	cmp_ok($b - $a, '<', $bound, "$t: memory flat in the number of files");
}

$node->stop;
done_testing();
