package pkcs11

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"testing"
)

// FuzzECDSADER: whatever r||s bytes a token returns, the conversion gives
// an error or DER that parses back to the same r and s.
func FuzzECDSADER(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0xff}, 64))
	f.Add(append(make([]byte, 31), 1, 0x80, 0))
	f.Add(make([]byte, 132))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, rs []byte) {
		der, err := ecdsaDER(rs)
		if err != nil {
			return
		}
		var sig struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(der, &sig)
		if err != nil || len(rest) != 0 {
			t.Fatalf("DER does not parse back: %v (%d bytes left)", err, len(rest))
		}
		n := len(rs) / 2
		if sig.R.Cmp(new(big.Int).SetBytes(rs[:n])) != 0 || sig.S.Cmp(new(big.Int).SetBytes(rs[n:])) != 0 {
			t.Fatal("r or s changed in the conversion")
		}
	})
}
