# Allocation-heavy Perl, deterministic output: compared between glibc and hakmem.
use strict;
use warnings;

my %h;
for my $i (0 .. 199_999) {
    $h{"key$i"} = [ $i, "v" x ($i % 50), { n => $i * 2, s => sprintf("%08x", $i * 2654435761 % 4294967296) } ];
}
my @keys = sort keys %h;
print "keys ", scalar(@keys), " first $keys[0] last $keys[-1]\n";

my $sum = 0;
$sum += $h{$_}[2]{n} for @keys;
print "sum $sum\n";

# Strings: concatenation, split, join, regex substitution.
my $s = "";
for my $i (0 .. 99_999) {
    $s .= "w$i,";
}
my @parts = split /,/, $s;
(my $t = $s) =~ s/w(\d+)7,/X$1,/g;
print "parts ", scalar(@parts), " len ", length($t), " cksum ", unpack("%32C*", $t), "\n";

# Delete half, rebuild, sort numerically by a computed key.
delete $h{$_} for grep { /[02468]$/ } @keys;
my @sorted = sort { $h{$a}[2]{s} cmp $h{$b}[2]{s} } keys %h;
print "left ", scalar(keys %h), " first $sorted[0] last $sorted[-1]\n";

# Arrays of arrays growing and shrinking.
my @aoa;
for my $i (0 .. 49_999) {
    push @aoa, [ ($i) x ($i % 20) ];
    shift @aoa if @aoa > 10_000;
}
my $n = 0;
$n += scalar(@$_) for @aoa;
print "aoa $n\n";
