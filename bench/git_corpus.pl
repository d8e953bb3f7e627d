#!/usr/bin/perl
# Makes a Git repository of a benchmark corpus, for the checkout measure of
# the freshness benchmark: the corpus copied to REPO/_kano/backlog (the
# corpus itself is left as it is), committed on branch bench-a, and a
# branch bench-b that changes CHANGES files of it (at most half of them):
# 80% edited (an item's title, or a line added to any other file), 10%
# added (copies of items with a new id and uid), 10% deleted.  The same
# corpus and CHANGES give the same repository, commits included.  A
# repository made earlier from the same arguments is kept and put back on
# bench-a (its work tree cleaned); one made from others is made again.
# Prints the number of files the two branches differ in.
#
#   perl bench/git_corpus.pl REPO CORPUS [CHANGES=5000]
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Find qw(find);
use File::Path qw(make_path remove_tree);

my ($repo, $corpus, $changes) = @ARGV;
die "usage: $0 REPO CORPUS [CHANGES]\n" unless defined $corpus && -d $corpus;
$changes //= 5000;
my $backlog = "$repo/_kano/backlog";
my $stamp = "$corpus $changes\n";

# git in the repository, fixed identity and dates; dies when git fails
sub git
{
	my @cmd = ('git', '-C', $repo, '-c', 'user.name=kabsd bench',
		'-c', 'user.email=bench@localhost', @_);
	local $ENV{GIT_AUTHOR_DATE} = '2026-01-01T00:00:00Z';
	local $ENV{GIT_COMMITTER_DATE} = '2026-01-01T00:00:00Z';
	system(@cmd) == 0 or die "$0: @cmd failed\n";
}

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or die "$0: $f: $!\n"; local $/; return scalar <$fh>; }

sub spew
{
	my ($f, $t) = @_;
	open(my $fh, '>', $f) or die "$0: $f: $!\n";
	print $fh $t;
	close($fh) or die "$0: $f: $!\n";
}

sub differ
{
	my $n = `git -C '$repo' diff --name-only bench-a bench-b | wc -l`;
	chomp $n;
	return $n;
}

my $stampfile = "$repo/.git/kabsd-bench";
if (-f $stampfile && slurp($stampfile) eq $stamp
	&& system("git -C '$repo' rev-parse -q --verify bench-b >/dev/null") == 0)
{
	git('checkout', '-q', '-f', 'bench-a');
	git('clean', '-q', '-f', '-d');
	print differ(), "\n";
	exit 0;
}

remove_tree($repo);
make_path(dirname($backlog));
system('cp', '-a', $corpus, $backlog) == 0 or die "$0: could not copy $corpus\n";
git('init', '-q', '-b', 'bench-a');
# nothing in the background while the benchmark times a checkout
git('config', 'gc.auto', '0');
git('config', 'maintenance.auto', 'false');
git('add', '-A');
git('commit', '-q', '-m', 'the corpus');
git('checkout', '-q', '-b', 'bench-b');

my @files;
find({ no_chdir => 1, wanted => sub { push @files, $_ if -f $_ && /\.md$/ } }, $backlog);
@files = sort @files;
$changes = int(@files / 2) if $changes > @files / 2;
# every k-th file, spread over the whole tree; a tenth of them deleted, a
# tenth copied to a new item beside them
my $step = @files / $changes;
my ($edited, $added, $deleted) = (0, 0, 0);
for my $i (0 .. $changes - 1)
{
	my $f = $files[int($i * $step)];
	my $text = slurp($f);
	my $item = $text =~ /\A---\n.*?^id: ([A-Z]+-[A-Z]+-\d+)$/ms ? $1 : undef;
	# the name's id, which may not be the frontmatter's (a repeated id)
	my $named = $f =~ m{/([A-Z]+-[A-Z]+-\d+)_[^/]*$} ? $1 : undef;
	if ($i % 10 == 3)
	{
		unlink($f) or die "$0: $f: $!\n";
		$deleted++;
	}
	elsif ($i % 10 == 7 && defined $item && defined $named)
	{
		(my $copy = $f) =~ s{/\Q$named\E_([^/]*)$}{/$named-B_$1};
		$text =~ s/^id: .*$/id: $item-B/m;
		$text =~ s/^uid: (.*-)[0-9a-f]([0-9a-f]{11})$/uid: ${1}b$2/m;
		spew($copy, $text);
		$added++;
	}
	elsif ($text =~ s/^title: "?(.*?)"?$/title: "$1 (bench-b)"/m)
	{
		spew($f, $text);
		$edited++;
	}
	else
	{
		spew($f, $text . "\nEdited on branch bench-b.\n");
		$edited++;
	}
}
git('add', '-A');
git('commit', '-q', '-m', "bench-b: $edited edited, $added added, $deleted deleted");
git('checkout', '-q', 'bench-a');
system('chmod', '-R', 'a+rX', $repo) == 0 or die "$0: chmod failed\n";
spew($stampfile, $stamp);
print differ(), "\n";
