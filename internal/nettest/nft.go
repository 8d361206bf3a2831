package nettest

import "regexp"

var (
	nftExpires = regexp.MustCompile(` expires [0-9dhms.]+`)
	nftCounter = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)
)

// NFTWithoutExpiry drops what the clock changes from an `nft list`
// output: the time set elements have left ("expires 59m58s").
func NFTWithoutExpiry(listing string) string {
	return nftExpires.ReplaceAllString(listing, "")
}

// NFTNormalized drops the expiry times and zeroes the counters, which
// traffic changes, so that two listings of one ruleset compare equal.
func NFTNormalized(listing string) string {
	return nftCounter.ReplaceAllString(NFTWithoutExpiry(listing), "counter packets 0 bytes 0")
}
