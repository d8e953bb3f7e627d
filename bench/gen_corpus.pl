#!/usr/bin/perl
# Generates a synthetic backlog shaped like a real one, for the benchmark
# and the load and memory tests.  Deterministic for a given seed (its own
# generator, not Perl's rand, so every Perl gives the same corpus).
#
#   perl bench/gen_corpus.pl DIR [ITEMS=10000] [SEED=1]
#
# Per 100 items: 10 decisions, one *.index.md page per bucket folder, 20
# other Markdown files.  Items are 0.7-8 KB (median about 1.8 KB) with the
# usual frontmatter keys, 5-8 headings, an acceptance checklist, 2-6 worklog
# entries (some with indented continuation lines), links of every type, and
# the messy cases of DATA-MODEL.md: dates in three forms, id: null, repeated
# display ids, type and state names outside the schema, relates/blocked_by
# at the top level, decisions with status/state and date/decision_date.
use strict;
use warnings;
use File::Path qw(make_path);

my ($dir, $n, $seed) = @ARGV;
die "usage: $0 DIR [ITEMS] [SEED]\n" unless defined $dir;
$n //= 10000;
$seed //= 1;

# xorshift32: small, fast and the same everywhere
my $state = ($seed * 2654435761) % 4294967296 || 1;
sub rnd {
	my ($max) = @_;
	$state ^= ($state << 13) & 0xFFFFFFFF;
	$state ^= $state >> 17;
	$state ^= ($state << 5) & 0xFFFFFFFF;
	return $state % $max;
}
sub pick { return $_[rnd(scalar @_)]; }

my @products = qw(atlas beacon cobalt);
my %prefix = (atlas => 'ATL', beacon => 'BCN', cobalt => 'CBT');
my @types = (['task', 'Task', 'TSK'], ['story', 'UserStory', 'USR'],
	['story', 'Story', 'USR'], ['bug', 'Bug', 'BUG'], ['epic', 'Epic', 'EPC'],
	['feature', 'Feature', 'FTR']);
my @states = qw(Proposed Planned Ready InProgress Review Done Blocked Draft New);
my @agents = qw(codex claude copilot ana ben chen);
my @words = qw(parse index query refresh cache worklog checklist frontmatter
	schema snapshot backlog product decision link parent state owner tag
	release iteration area priority render export import migrate verify);

sub words {
	my ($k) = @_;
	return join ' ', map { pick(@words) } 1 .. $k;
}
sub uuid {
	my ($i, $kind) = @_;
	return sprintf('019b%04x-%04x-7%03x-8%03x-%012x', $kind, $i >> 16 & 0xffff,
		$i & 0xfff, rnd(4096), $i * 7919 + $kind);
}
sub write_file {
	my ($path, $text) = @_;
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh $text;
	close $fh;
}
sub date {
	my $d = sprintf('2026-%02d-%02d', 1 + rnd(12), 1 + rnd(28));
	my $form = rnd(10);
	return $form < 6 ? $d : $form < 8 ? "'$d'" : sprintf('%s %02d:%02d:00', $d, rnd(24), rnd(60));
}

# items
my %bucket_seen;
for my $i (1 .. $n) {
	my $product = $products[$i % 3];
	my $t = $types[rnd(scalar @types)];
	my ($tdir, $tname, $tcode) = @$t;
	my $num = int($i / 3) + 1;
	my $id = sprintf('%s-%s-%04d', $prefix{$product}, $tcode, $num);
	my $bucket = sprintf('%04d', int($num / 100) * 100);
	my $folder = "$dir/products/$product/items/$tdir/$bucket";
	unless ($bucket_seen{$folder}++) {
		make_path($folder);
		write_file("$folder/$bucket.index.md",
			"---\ntitle: Index of $tdir $bucket\ngenerated: true\n---\n# Index\n\n- [[$id]]\n");
	}
	my $parent = sprintf('%s-EPC-%04d', $prefix{$product}, 1 + rnd($num));
	my $rel = sprintf('%s-TSK-%04d', $prefix{$product}, 1 + rnd($num + 5));
	my $idline = rnd(200) == 0 ? 'id: null' : rnd(300) == 0 ? sprintf('id: %s-TSK-0001', $prefix{$product}) : "id: $id";
	my $title = ucfirst(words(3 + rnd(5)));
	my $fm = "---\n$idline\nuid: " . uuid($i, 1) . "\ntype: $tname\ntitle: \"$title\"\n"
		. 'state: ' . pick(@states) . "\npriority: P" . rnd(4) . "\nparent: $parent\n"
		. 'area: ' . pick(@words) . "\niteration: 2026-Q" . (1 + rnd(4)) . "\n"
		. 'owner: ' . pick(@agents) . "\ntags: [" . join(', ', map { pick(@words) } 1 .. rnd(4)) . "]\n"
		. 'created: ' . date() . "\nupdated: " . date() . "\n";
	if (rnd(4) == 0) {
		$fm .= "relates: [$rel]\nblocked_by: [$parent]\n";
	} else {
		$fm .= "links:\n  relates: [$rel]\n  blocks: [" . sprintf('%s-BUG-%04d', $prefix{$product}, 1 + rnd($num + 3)) . "]\n  blocked_by: []\n";
	}
	$fm .= sprintf("decisions: [ADR-%04d]\n", 1 + rnd(int($n / 10) + 1)) if rnd(3) == 0;
	$fm .= "external:\n  jira_key: KAB-$i\n  points: " . rnd(13) . "\n" if rnd(5) == 0;
	$fm .= "---\n";

	# body: size drawn so that the median is near 1.8 KB and the tail 8 KB
	my $target = 700 + int((rnd(1000) / 1000) ** 2.7 * 7300);
	my $body = "# $title\n\n## Context\n\n" . ucfirst(words(12)) . ". See [[$parent]] and [[$rel|related]].\n\n## Goal\n\n" . ucfirst(words(15)) . ".\n\n## Approach\n\n";
	$body .= "```sql\nSELECT * FROM items; -- [[not-a-link]]\n```\n\n" if rnd(4) == 0;
	while (length($fm) + length($body) < $target - 800) {
		$body .= ucfirst(words(10 + rnd(10))) . ".\n";
	}
	$body .= "\n## Acceptance Criteria\n\n";
	for my $c (1 .. 2 + rnd(5)) {
		$body .= '- [' . (rnd(2) ? 'x' : ' ') . '] ' . ucfirst(words(4 + rnd(4))) . "\n";
	}
	$body .= "\n## Risks / Dependencies\n\n" . ucfirst(words(8)) . ".\n" if rnd(2);
	$body .= "\n## Links\n\nParent [[$parent]].\n" if rnd(3) == 0;
	$body .= "\n## Worklog\n\n";
	for my $w (1 .. 2 + rnd(5)) {
		my $ts = sprintf('2026-%02d-%02d %02d:%02d', 1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60));
		$ts = '2026-13-45 25:99' if rnd(500) == 0;
		my $model = rnd(2) ? ' [model=' . pick(qw(gpt-5 sonnet-4 o3)) . ']' : '';
		my $msg = rnd(5) == 0 ? 'State -> ' . pick(@states) . '.' : ucfirst(words(6)) . '.';
		$body .= "$ts [agent=" . pick(@agents) . "]$model $msg\n";
		$body .= '  - ' . words(5) . "\n" if rnd(4) == 0;
	}
	write_file(sprintf('%s/%s_%s.md', $folder, $id, join('-', (split / /, lc $title)[0 .. 2])), $fm . $body);
}

# decisions
for my $product (@products) {
	make_path("$dir/products/$product/decisions");
}
for my $d (1 .. int($n / 10)) {
	my $product = $products[$d % 3];
	my $id = sprintf('ADR-%04d', $d);
	my $status = rnd(2) ? 'status' : 'state';
	my $datekey = pick(qw(date decision_date created));
	write_file("$dir/products/$product/decisions/${id}_" . pick(@words) . '.md',
		"---\nid: $id\nuid: " . uuid($d, 2) . "\ntype: " . pick(qw(Decision ADR)) . "\ntitle: " . ucfirst(words(4))
		. "\n$status: " . pick(qw(Proposed Accepted Decided Superseded)) . "\n$datekey: " . date()
		. "\ndeciders: [" . pick(@agents) . ', ' . pick(@agents) . "]\nrelated_items: [" . sprintf('%s-TSK-%04d', $prefix{$product}, 1 + rnd(int($n / 3) + 1))
		. "]\n---\n# Context\n\n" . ucfirst(words(20)) . ".\n\n# Decision\n\n" . ucfirst(words(15)) . ".\n\n# Consequences\n\n" . ucfirst(words(12)) . ".\n");
}

# other Markdown: topics, views, _meta, artifacts, README
for my $sub (qw(topics views _meta artifacts)) {
	make_path("$dir/$sub");
}
write_file("$dir/README.md", "# Backlog\n\nGenerated for the kabsd_fdw benchmark.\n");
for my $o (1 .. int($n / 5)) {
	my $sub = pick(qw(topics views _meta artifacts));
	my $text = rnd(2) ? "---\ntitle: " . words(3) . "\n---\n" : '';
	$text .= '# ' . ucfirst(words(3)) . "\n\n" . ucfirst(words(30)) . ".\n";
	write_file(sprintf('%s/%s/note-%06d.md', $dir, $sub, $o), $text);
}
