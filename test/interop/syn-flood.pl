#!/usr/bin/perl
# A SYN flood for the limits tests, run INSIDE a client's namespace:
#
#   perl syn-flood.pl COUNT SOURCE_NET DEST_NET PER_SECOND
#
# Sends COUNT TCP SYNs to random ports of DEST_NET.1-254, from SOURCE_NET.2-254 (a /24
# given as "10.0.1"), every (source address, source port) used once, PER_SECOND of them
# a second. It writes the IP header itself (a raw socket), so it needs no socket per SYN
# and the sources need not be the namespace's own addresses: the server's SYN-ACKs come
# back to addresses nobody has, and no RST ends the half-open connections, as in a real
# flood. Prints {"sent": COUNT}.
#
# Perl because Node has no raw sockets and perl-base is on every Debian system.
use strict;
use warnings;
use Socket qw(AF_INET SOCK_RAW inet_aton pack_sockaddr_in);

my ($count, $source_net, $dest_net, $per_second) = @ARGV;
die "usage: syn-flood.pl COUNT SOURCE_NET DEST_NET PER_SECOND\n" unless $per_second;

# IPPROTO_RAW (255): we give the whole IP header; the kernel fills in its checksum.
socket(my $raw, AF_INET, SOCK_RAW, 255) or die "raw socket: $!\n";

sub checksum {
    my $sum = 0;
    $sum += $_ for unpack("n*", $_[0]);
    $sum = ($sum >> 16) + ($sum & 0xffff) while $sum >> 16;
    return ~$sum & 0xffff;
}

srand(7);
my $batch = 100;    # SYNs between pauses
for my $i (0 .. $count - 1) {
    my $src = inet_aton("$source_net." . (2 + $i % 253));
    my $dst = inet_aton("$dest_net." . (1 + int(rand(254))));
    my ($sport, $dport) = (1024 + int($i / 253), 1 + int(rand(65535)));
    # Data offset 5 words, SYN; no options.
    my $tcp = pack("nnNNnnnn", $sport, $dport, int(rand(2**32)), 0, (5 << 12) | 0x02, 64240, 0, 0);
    my $sum = checksum($src . $dst . pack("CCn", 0, 6, length $tcp) . $tcp);
    substr($tcp, 16, 2) = pack("n", $sum);
    my $ip = pack("CCnnnCCn", 0x45, 0, 20 + length $tcp, 0, 0x4000, 64, 6, 0) . $src . $dst;
    send($raw, $ip . $tcp, 0, pack_sockaddr_in(0, $dst)) or die "send: $!\n";
    select(undef, undef, undef, $batch / $per_second) if $i % $batch == $batch - 1;
}
print "{\"sent\":$count}\n";
