#!/usr/bin/perl
# The freshness part of the benchmark (bench/run.sh runs it): how soon the
# snapshot follows the files.  On a cluster with kabsd_fdw preloaded and
# kabsd_fdw.watch_database naming the database it connects to (libpq's
# environment: PGHOST, PGPORT, PGUSER, PGDATABASE), with the backlog at
# ROOT inside the Git repository REPO made by bench/git_corpus.pl (branches
# bench-a and bench-b), it
#   attaches ROOT, kabsd_watch()es it and times the watcher's start-up
#     (its whole-tree refresh), counting its inotify watches;
#   (f3) reads the watcher's CPU time and wake-ups over IDLE seconds of
#     nothing changing, and its memory (/proc/PID/status, smaps_rollup);
#   (f1) edits EDITS items one at a time, in place (the title or the state
#     set to a unique marker), and polls the snapshot (items) every few
#     milliseconds from one psql session until the marker shows: wall time
#     from the write to the row, p50, p95 and max;
#   (f2) runs CHECKOUTS times `git checkout` from one branch to the other:
#     with the watcher, the time from the checkout's start to the end of
#     the refresh after which the snapshot's files and items equal the
#     live tables' (path and size of each file; path, id, title and state
#     of each item), checked afterwards by a full refresh (full => true)
#     that must write nothing; then without it, the checkout followed by a
#     kabsd_refresh() of the whole tree, and by a
#     kabsd_refresh(paths => <git diff --name-only>).
# Prints a Markdown table (and lines of prose on memory) like the rest of
# the benchmark's; progress goes to standard error.  It reports; it never
# fails on a timing.
#
#   perl bench/freshness.pl --repo REPO --root ROOT [--backlog NAME]
#        [--edits 50] [--idle 30] [--checkouts 3] [--log SERVER_LOG]
use strict;
use warnings;
use File::Find qw(find);
use Getopt::Long qw(GetOptions);
use IPC::Open2 qw(open2);
use List::Util qw(max sum);
use Time::HiRes qw(time sleep);

my %o = (backlog => 'fresh', edits => 50, idle => 30, checkouts => 3);
GetOptions(\%o, 'repo=s', 'root=s', 'backlog=s', 'edits=i', 'idle=i', 'checkouts=i', 'log=s')
  and $o{repo} && $o{root}
  or die "usage: $0 --repo REPO --root ROOT [--backlog NAME] [--edits N] [--idle S] [--checkouts N] [--log FILE]\n";
my ($repo, $root, $name) = @o{qw(repo root backlog)};
$| = 1;

sub progress { print STDERR "freshness: @_\n"; }

# One psql session for everything, read a line per statement: each
# statement must return one row (columns joined by |).
$ENV{PGOPTIONS} = '-c client_min_messages=warning';
my $psql_pid = open2(my $from_psql, my $to_psql,
	'psql', '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1');
select((select($to_psql), $| = 1)[0]);

sub sql
{
	my ($sql) = @_;
	print $to_psql "$sql;\n";
	my $line = <$from_psql>;
	die "$0: psql stopped at: $sql\n" unless defined $line;
	chomp $line;
	return $line;
}

sub quote { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }

sub git
{
	system('git', '-C', $repo, @_) == 0 or die "$0: git @_ failed\n";
}

sub median
{
	my @s = sort { $a <=> $b } @_;
	return @s ? $s[int((@s - 1) / 2)] : 'NaN';
}

# nearest rank
sub percentile
{
	my ($p, @v) = @_;
	my @s = sort { $a <=> $b } @v;
	return 'NaN' unless @s;
	my $rank = int($p / 100 * @s + 0.999999);
	return $s[max(0, $rank - 1)];
}

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or die "$0: $f: $!\n"; local $/; return scalar <$fh>; }

# a save in place, as an editor that keeps the file's inode writes it
sub save
{
	my ($f, $t) = @_;
	open(my $fh, '>', $f) or die "$0: $f: $!\n";
	print $fh $t;
	close($fh) or die "$0: $f: $!\n";
}

# /proc of the watcher: CPU seconds (utime + stime), wake-ups (context
# switches) and memory in kB
my $hz = `getconf CLK_TCK`;
chomp $hz;
$hz ||= 100;

sub cpu_seconds
{
	my ($pid) = @_;
	my $stat = slurp("/proc/$pid/stat");
	$stat =~ s/^.*\) //s;
	my @f = split ' ', $stat;
	return ($f[11] + $f[12]) / $hz;
}

sub status
{
	my ($pid) = @_;
	my %s;
	for my $file ("/proc/$pid/status", "/proc/$pid/smaps_rollup")
	{
		next unless -r $file;
		for (split /\n/, slurp($file))
		{
			$s{$1} = $2 if /^(\w+):\s+(\d+)/;
		}
	}
	$s{switches} = ($s{voluntary_ctxt_switches} // 0) + ($s{nonvoluntary_ctxt_switches} // 0);
	return \%s;
}

sub watches
{
	my ($pid) = @_;
	my $n = 0;
	for my $fd (glob("/proc/$pid/fdinfo/*"))
	{
		open(my $fh, '<', $fd) or next;
		$n += grep { /^inotify wd:/ } <$fh>;
		close($fh);
	}
	return $n;
}

sub memory
{
	my ($s) = @_;
	return sprintf('RSS %.1f MB, private %.1f MB, PSS %s', ($s->{VmRSS} // 0) / 1024,
		($s->{RssAnon} // 0) / 1024,
		defined $s->{Pss} ? sprintf('%.1f MB', $s->{Pss} / 1024) : 'unknown');
}

# LOG lines of the watcher's whole-tree refreshes since a place in the log
sub log_size { return $o{log} && -f $o{log} ? -s $o{log} : 0; }

sub full_walks
{
	my ($from) = @_;
	return 'unknown' unless $o{log} && -f $o{log};
	open(my $fh, '<', $o{log}) or return 'unknown';
	seek($fh, $from, 0);
	my $n = grep { /full refresh of backlog "\Q$name\E"/ } <$fh>;
	close($fh);
	return $n;
}

my $last_refresh = "SELECT coalesce(max(id), 0) FROM kabsd.refresh_history WHERE name = " . quote($name);

# Waits until the watcher is done: no refresh for longer than its quiet
# period and delay together, and none running.
my $wait_ms;
sub settle
{
	my $id = sql($last_refresh);
	my $since = time;
	while (1)
	{
		sleep(0.1);
		my ($now, $busy) = split /\|/, sql("SELECT ($last_refresh), (SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'kabsd_fdw watcher' AND query LIKE 'refreshing%')");
		($id, $since) = ($now, time) if $now != $id || $busy;
		return $id if time - $since > $wait_ms / 1000 + 0.5;
	}
}

# What the snapshot's (or the live tables') files and items say, in one
# line: counts and digests
sub fingerprint_sql
{
	my ($schema) = @_;
	return "(SELECT count(*) || ' ' || md5(coalesce(string_agg(path || ' ' || size, E'\\n' ORDER BY path), ''))
	           FROM $schema.files) || ' ' ||
	        (SELECT count(*) || ' ' || md5(coalesce(string_agg(concat_ws(' ', path, id, title, state), E'\\n' ORDER BY path), ''))
	           FROM $schema.items)";
}

# A full refresh, every file read and compared: the rows it writes are
# what the snapshot lacked
sub full_refresh_writes
{
	sql("SELECT count(*) FROM kabsd_refresh(" . quote($name) . ", full => true)");
	return sql("SELECT rows_written FROM kabsd.refresh_history WHERE name = " . quote($name) . " ORDER BY id DESC LIMIT 1");
}

# --- start-up
my $watcher_sql = "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'kabsd_fdw watcher'";
my $pid = 0;
for (1 .. 300)
{
	$pid = sql($watcher_sql);
	last if $pid;
	sleep(0.1);
}
die "$0: no kabsd_fdw watcher in pg_stat_activity (kabsd_fdw in shared_preload_libraries, kabsd_fdw.watch_database?)\n"
  unless $pid;
my ($quiet_ms, $delay_ms) = split /\|/, sql("SELECT min(setting) FILTER (WHERE name = 'kabsd_fdw.watch_quiet_ms'),
	min(setting) FILTER (WHERE name = 'kabsd_fdw.watch_max_delay_ms') FROM pg_settings");
$wait_ms = $quiet_ms + $delay_ms;
my $mem_before = status($pid);

progress("attaching $root as $name");
sql("SELECT count(*) FROM kabsd_attach(" . quote($root) . ", " . quote($name) . ")");
my @dirs;
find({ no_chdir => 1, wanted => sub {
	if (-d $_ && !-l $_) {
		if ($_ ne $root && m{/\.[^/]*$}) { $File::Find::prune = 1; } else { push @dirs, $_; }
	} } }, $root);
my $before = sql($last_refresh);
my $cpu0 = cpu_seconds($pid);
my $t0 = time;
sql("SELECT kabsd_watch(" . quote($name) . ")");
my $startup_end;
for (1 .. 6000)
{
	$startup_end = sql("SELECT coalesce(max(extract(epoch FROM started_at + duration)), 0) FROM kabsd.refresh_history
		WHERE name = " . quote($name) . " AND id > $before");
	last if $startup_end > 0;
	sleep(0.05);
}
my $startup = $startup_end > 0 ? $startup_end - $t0 : 'NaN';
settle();
my $startup_cpu = cpu_seconds($pid) - $cpu0;
my $nwatches = watches($pid);
my $mem_watching = status($pid);
progress(sprintf('watching %d directories (%d inotify watches) after %s s', scalar @dirs, $nwatches, s3($startup)));

# --- (f3) idle
progress("idle for $o{idle} s");
my ($c0, $s0) = (cpu_seconds($pid), status($pid)->{switches});
sleep($o{idle});
my ($c1, $s1) = (cpu_seconds($pid), status($pid)->{switches});
my $idle_cpu = $c1 - $c0;
my $idle_wakeups = $s1 - $s0;

# --- (f1) edit to visible
my @items;
find({ no_chdir => 1, wanted => sub {
	push @items, $_ if -f $_ && m{/items/.*\.md$} && !/\.index\.md$/ } }, "$root/products");
@items = sort @items;
# spread over the tree: from each of EDITS evenly spaced places, the first
# item with an id, a title and a state
my (@chosen, %taken);
for my $k (0 .. $o{edits} - 1)
{
	for (my $j = int($k * @items / $o{edits}); $j < @items; $j++)
	{
		next if $taken{$j};
		my $t = slurp($items[$j]);
		next unless $t =~ /\A---\n.*?^id: [A-Z]+-[A-Z]+-\d+$/ms && $t =~ /^title: .*$/m && $t =~ /^state: .*$/m;
		push @chosen, $items[$j];
		$taken{$j} = 1;
		last;
	}
}
progress("$o{edits} edits, one at a time");
srand(1);
my (@latency, $timeouts);
$before = sql($last_refresh);
for my $i (0 .. $#chosen)
{
	my $f = $chosen[$i];
	my $text = slurp($f);
	my ($id) = $text =~ /^id: (\S+)$/m;
	my $marker = "fresh-$$-$i";
	my $column = $i % 2 ? 'state' : 'title';
	$text =~ s/^$column: .*$/$column: $marker/m;
	my $poll = "SELECT count(*) FROM $name.items WHERE id = " . quote($id) . " AND $column = " . quote($marker);
	my $start = time;
	save($f, $text);
	my $seen;
	while (time - $start < 30)
	{
		if (sql($poll) > 0)
		{
			$seen = time;
			last;
		}
		sleep(0.003);
	}
	if (defined $seen) { push @latency, $seen - $start; } else { $timeouts++; }
	# the next edit after a pause, at no fixed phase of the watcher's
	sleep(0.2 + rand(0.3));
}
my ($refreshes, $refresh_p50) = split /\|/, sql("SELECT count(*), coalesce(percentile_cont(0.5)
	WITHIN GROUP (ORDER BY extract(epoch FROM duration)), 0)
	FROM kabsd.refresh_history WHERE name = " . quote($name) . " AND id > $before");

# --- (f2) git checkout
progress('git checkout, the watcher following');
git('checkout', '-q', '-f', 'bench-a');
settle();
my %fp;
$fp{'bench-a'} = sql("SELECT " . fingerprint_sql("${name}_live"));
git('checkout', '-q', 'bench-b');
settle();
$fp{'bench-b'} = sql("SELECT " . fingerprint_sql("${name}_live"));
my $changed = `git -C '$repo' diff --name-only --no-renames bench-a bench-b | wc -l`;
chomp $changed;
my $branch = 'bench-b';
sub other { return $_[0] eq 'bench-a' ? 'bench-b' : 'bench-a'; }

my (@w_total, @w_checkout, @w_refreshes, @w_walks, @w_writes);
for my $run (1 .. $o{checkouts})
{
	my $target = other($branch);
	my $from_id = sql($last_refresh);
	my $from_log = log_size();
	my $start = time;
	git('checkout', '-q', $target);
	push @w_checkout, time - $start;
	my ($seen_id, $end) = ($from_id, 0);
	while (time - $start < 600)
	{
		sleep(0.02);
		next if sql($last_refresh) == $seen_id;
		# the newest refresh and the snapshot it left, in one snapshot
		my ($id, $ended, $fp) = split /\|/, sql("SELECT r.id, extract(epoch FROM r.started_at + r.duration), "
			. fingerprint_sql($name) . " FROM kabsd.refresh_history r WHERE r.id = ($last_refresh)");
		$seen_id = $id;
		if ($fp eq $fp{$target})
		{
			$end = $ended;
			last;
		}
	}
	push @w_total, $end ? $end - $start : 'NaN';
	settle();
	push @w_refreshes, sql($last_refresh) - $from_id;
	push @w_walks, full_walks($from_log);
	push @w_writes, full_refresh_writes();
	$branch = $target;
	progress("checkout to $target: consistent after " . s3($w_total[-1]) . ' s');
}

sql("SELECT kabsd_unwatch(" . quote($name) . ")");
my $mem_after = status($pid);
# Checkouts from one branch to the other, each followed by $refresh (given
# the branches from and to): the times of the whole, of the checkout and of
# the rest, and what a full refresh then wrote
sub checkouts_then
{
	my ($refresh) = @_;
	my %r = map { $_ => [] } qw(total checkout after writes);
	for my $run (1 .. $o{checkouts})
	{
		my $target = other($branch);
		my $start = time;
		git('checkout', '-q', $target);
		my $mid = time;
		$refresh->($branch, $target);
		push @{ $r{total} }, time - $start;
		push @{ $r{checkout} }, $mid - $start;
		push @{ $r{after} }, time - $mid;
		push @{ $r{writes} }, full_refresh_writes();
		$branch = $target;
	}
	return \%r;
}

progress('git checkout, then kabsd_refresh() of the whole tree');
my $whole = checkouts_then(sub { sql("SELECT count(*) FROM kabsd_refresh(" . quote($name) . ")"); });

progress('git checkout, then kabsd_refresh(paths => git diff --name-only)');
my $npaths;
my $targeted = checkouts_then(sub {
	my ($from, $to) = @_;
	# paths relative to the backlog's root, NUL-separated
	open(my $diff, '-|', 'git', '-C', $root, 'diff', '-z', '--name-only', '--no-renames', '--relative', $from, $to)
	  or die "$0: git diff: $!\n";
	my @paths = do { local $/ = "\0"; map { chomp; $_ } <$diff> };
	close($diff) or die "$0: git diff failed\n";
	$npaths = @paths;
	sql("SELECT count(*) FROM kabsd_refresh(" . quote($name) . ", paths => ARRAY["
		. join(',', map { quote($_) } @paths) . "]::text[])");
});
close($to_psql);
waitpid($psql_pid, 0);

# --- the table
sub s3 { my ($v) = @_; return $v eq 'NaN' ? $v : sprintf('%.3f', $v); }
sub list { return join(', ', map { s3($_) } @_); }
sub target_1s { my ($v) = @_; return $v eq 'NaN' ? 'no figure' : $v < 1 ? 'met' : 'not met'; }
my $p95 = percentile(95, @latency);
my $n = @latency;
my $missed = $timeouts ? "; $timeouts not seen within 30 s" : '';
print "| measurement | seconds | note |\n";
print "| --- | ---: | --- |\n";
printf "| (f1) edit to visible in the snapshot, the watcher: p50 | %s | %d single-file edits in place, the snapshot polled every 3 ms; quiet period %d ms, the refreshes' own p50 %.3f s (%d refreshes)%s |\n",
	s3(percentile(50, @latency)), $n, $quiet_ms, $refresh_p50, $refreshes, $missed;
printf "| (f1) edit to visible, p95 | %s | target under 1 s: %s |\n", s3($p95), target_1s($p95);
printf "| (f1) edit to visible, max | %s | |\n", s3(max(@latency) // 'NaN');
printf "| (f2) git checkout of %d files, the watcher: to a consistent snapshot | %s | median of %d (%s); the checkout itself %s s; refreshes per checkout: %s; whole-tree walks: %s; a full refresh then wrote %s rows |\n",
	$changed, s3(median(@w_total)), scalar @w_total, list(@w_total), s3(median(@w_checkout)),
	join(', ', @w_refreshes), join(', ', @w_walks), join(', ', @w_writes);
printf "| (f2) git checkout, then kabsd_refresh() (the whole tree), no watcher | %s | median of %d (%s); the checkout itself %s s, the refresh %s s; a full refresh then wrote %s rows |\n",
	s3(median(@{ $whole->{total} })), scalar @{ $whole->{total} }, list(@{ $whole->{total} }),
	s3(median(@{ $whole->{checkout} })), s3(median(@{ $whole->{after} })), join(', ', @{ $whole->{writes} });
printf "| (f2) git checkout, then kabsd_refresh(paths => git diff --name-only) | %s | median of %d (%s); the checkout itself %s s, git diff and the refresh of %d paths %s s; a full refresh then wrote %s rows |\n",
	s3(median(@{ $targeted->{total} })), scalar @{ $targeted->{total} }, list(@{ $targeted->{total} }),
	s3(median(@{ $targeted->{checkout} })), $npaths, s3(median(@{ $targeted->{after} })), join(', ', @{ $targeted->{writes} });
printf "| (f3) the watcher's start-up: kabsd_watch() to its whole-tree refresh done | %s | %d directories, %d inotify watches; %.2f s of CPU in the watcher |\n",
	s3($startup), scalar @dirs, $nwatches, $startup_cpu;
printf "| (f3) the watcher idle for %d s, watching the whole corpus: CPU | %.2f | utime + stime; %d context switches |\n",
	$o{idle}, $idle_cpu, $idle_wakeups;
print "\n";
printf "Memory of the watcher (RSS; private: RssAnon; PSS): watching nothing %s; watching %d directories, after its start-up walk and refresh, %s; after the edits and checkouts %s (peak RSS, VmHWM, %.1f MB).\n",
	memory($mem_before), scalar @dirs, memory($mem_watching), memory($mem_after), ($mem_after->{VmHWM} // 0) / 1024;
