
# Copyright: kabsd_fdw authors.  A database whose encoding cannot hold every
# UTF-8 file is refused with a clear error when a scan starts, never fed
# text in the wrong encoding, and the session goes on.
use strict;
use warnings;
use Cwd;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $fixtures = getcwd() . '/test/fixtures/backlog';
my $node = PostgreSQL::Test::Cluster->new('encoding');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE latin1 TEMPLATE template0 ENCODING LATIN1 LOCALE "C"');
$node->safe_psql('latin1', qq{
	CREATE EXTENSION kabsd_fdw;
	CREATE SERVER fx FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$fixtures');
	CREATE FOREIGN TABLE items (id text) SERVER fx;
});
my ($ret, $stdout, $stderr) = $node->psql('latin1', 'SELECT count(*) FROM items');
isnt($ret, 0, 'a scan in a LATIN1 database fails');
like($stderr, qr/kabsd_fdw requires a database with encoding UTF8/, 'with a clear error');
is($node->safe_psql('latin1', 'SELECT 1'), '1', 'and the session goes on');
$node->stop;
done_testing();
