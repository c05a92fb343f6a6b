package tpm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// softKeyFile builds a key file around a software P-256 public key and a
// made-up private area: enough for the parser, which does not look inside
// the private area (only the TPM can).
func softKeyFile(t testing.TB, emptyAuth bool, parent tpm2.TPMHandle) *keyFile {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pub := signingTemplate(!emptyAuth)
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: raw[1:33]},
		Y: tpm2.TPM2BECCParameter{Buffer: raw[33:]},
	})
	return &keyFile{
		emptyAuth: emptyAuth,
		parent:    parent,
		public:    tpm2.New2B(pub),
		private:   tpm2.TPM2BPrivate{Buffer: bytes.Repeat([]byte{0xa5}, 126)},
		pub:       &priv.PublicKey,
	}
}

func marshalTest(t testing.TB, k *keyFile) []byte {
	t.Helper()
	data, err := marshalKeyFile(k)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pemDER wraps DER in a TSS2 PEM block.
func pemDER(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemKeyType, Bytes: der})
}

// berEmptyAuth rewrites the DER emptyAuth TRUE (0xff) of a key file as
// the BER 0x01 that tpm2-tss-engine and the OpenSSL tpm2 provider write.
func berEmptyAuth(t testing.TB, data []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(data)
	der := bytes.Replace(block.Bytes, []byte{0xa0, 0x03, 0x01, 0x01, 0xff}, []byte{0xa0, 0x03, 0x01, 0x01, 0x01}, 1)
	if bytes.Equal(der, block.Bytes) {
		t.Fatal("no emptyAuth TRUE in the key file")
	}
	return pemDER(der)
}

func TestKeyFileRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name      string
		emptyAuth bool
		parent    tpm2.TPMHandle
	}{
		{"empty auth, owner", true, tpm2.TPMRHOwner},
		{"auth, persistent SRK", false, srkHandle},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := softKeyFile(t, c.emptyAuth, c.parent)
			data := marshalTest(t, k)
			got, err := parseKeyFile(data)
			if err != nil {
				t.Fatalf("parseKeyFile: %v", err)
			}
			if got.emptyAuth != c.emptyAuth || got.parent != c.parent || !got.pub.Equal(k.pub) ||
				!bytes.Equal(tpm2.Marshal(got.public), tpm2.Marshal(k.public)) ||
				!bytes.Equal(got.private.Buffer, k.private.Buffer) {
				t.Errorf("parseKeyFile(marshalKeyFile(k)) differs from k")
			}
			if again := marshalTest(t, got); !bytes.Equal(again, data) {
				t.Errorf("the key file does not marshal back to the same bytes")
			}
		})
	}
	// Files of other tools: BER TRUE, parent 0 meaning the owner.
	k := softKeyFile(t, true, tpm2.TPMRHOwner)
	got, err := parseKeyFile(berEmptyAuth(t, marshalTest(t, k)))
	if err != nil || !got.emptyAuth {
		t.Errorf("BER emptyAuth: %+v, %v", got, err)
	}
	der, _ := asn1.Marshal(tssKeyOut{oidLoadableKey, 0, tpm2.Marshal(k.public), tpm2.Marshal(k.private)})
	if got, err := parseKeyFile(pemDER(der)); err != nil || got.parent != tpm2.TPMRHOwner {
		t.Errorf("parent 0: %+v, %v", got, err)
	}
}

func TestParseKeyFileErrors(t *testing.T) {
	k := softKeyFile(t, false, tpm2.TPMRHOwner)
	pubBytes, privBytes := tpm2.Marshal(k.public), tpm2.Marshal(k.private)
	// field is an optional field [tag] of the TPMKey SEQUENCE.
	field := func(tag int, v any) asn1.RawValue {
		der, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: true, Bytes: der}
	}
	seq := func(elems ...any) []byte {
		var body []byte
		for _, e := range elems {
			der, err := asn1.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			body = append(body, der...)
		}
		der, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
		return pemDER(der)
	}
	withPublic := func(edit func(*tpm2.TPMTPublic)) []byte {
		pub, err := k.public.Contents()
		if err != nil {
			t.Fatal(err)
		}
		p := *pub
		edit(&p)
		return seq(oidLoadableKey, int64(tpm2.TPMRHOwner), tpm2.Marshal(tpm2.New2B(p)), privBytes)
	}
	eccParams := func(edit func(*tpm2.TPMSECCParms)) func(*tpm2.TPMTPublic) {
		return func(p *tpm2.TPMTPublic) {
			params := *mustECC(t, p)
			edit(&params)
			p.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &params)
		}
	}
	for _, c := range []struct {
		name   string
		data   []byte
		wantIn string
	}{
		{"no PEM", []byte("hello"), "no \"TSS2 PRIVATE KEY\" PEM block"},
		{"other PEM type", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0}}), "want \"TSS2 PRIVATE KEY\""},
		{"PEM headers", pem.EncodeToMemory(&pem.Block{Type: pemKeyType, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{0x30, 0}}), "headers"},
		{"two blocks", append(marshalTest(t, k), marshalTest(t, k)...), "after the PEM block"},
		{"not a SEQUENCE", pemDER([]byte{0x04, 0}), "not a SEQUENCE"},
		{"trailing data", pemDER(append(mustUnPEM(t, marshalTest(t, k)), 0)), "trailing"},
		{"empty SEQUENCE", seq(), "no type"},
		{"other type", seq(asn1.ObjectIdentifier{2, 23, 133, 10, 1, 4}, int64(tpm2.TPMRHOwner), pubBytes, privBytes), "not a loadable key"},
		{"policy", seq(oidLoadableKey, field(1, []asn1.RawValue{}), int64(tpm2.TPMRHOwner), pubBytes, privBytes), "policies"},
		{"secret", seq(oidLoadableKey, field(2, []byte{1}), int64(tpm2.TPMRHOwner), pubBytes, privBytes), "secrets"},
		{"rsa parent", seq(oidLoadableKey, field(5, true), int64(tpm2.TPMRHOwner), pubBytes, privBytes), "RSA primary"},
		{"fields out of order", seq(oidLoadableKey, field(4, "d"), field(0, true), int64(tpm2.TPMRHOwner), pubBytes, privBytes), "unexpected optional field"},
		{"emptyAuth not a boolean", seq(oidLoadableKey, field(0, 1), int64(tpm2.TPMRHOwner), pubBytes, privBytes), "not a BOOLEAN"},
		{"no parent", seq(oidLoadableKey), "no parent"},
		{"parent endorsement", seq(oidLoadableKey, int64(tpm2.TPMRHEndorsement), pubBytes, privBytes), "neither the owner"},
		{"parent transient", seq(oidLoadableKey, int64(0x80000000), pubBytes, privBytes), "neither the owner"},
		{"parent too big", seq(oidLoadableKey, int64(1)<<40, pubBytes, privBytes), "neither the owner"},
		{"parent not an integer", seq(oidLoadableKey, "x", pubBytes, privBytes), "parent"},
		{"no privkey", seq(oidLoadableKey, int64(tpm2.TPMRHOwner), pubBytes), "no privkey"},
		{"extra field", seq(oidLoadableKey, int64(tpm2.TPMRHOwner), pubBytes, privBytes, []byte{}), "after privkey"},
		{"truncated public", seq(oidLoadableKey, int64(tpm2.TPMRHOwner), pubBytes[:len(pubBytes)-1], privBytes), "public area"},
		{"public with trailing bytes", seq(oidLoadableKey, int64(tpm2.TPMRHOwner), append(bytes.Clone(pubBytes), 0), privBytes), "public area"},
		{"empty private", seq(oidLoadableKey, int64(tpm2.TPMRHOwner), pubBytes, []byte{0, 0}), "private area is empty"},
		{"RSA key", withPublic(func(p *tpm2.TPMTPublic) {
			p.Type = tpm2.TPMAlgRSA
			p.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{KeyBits: 2048})
			p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: make([]byte, 256)})
		}), "not an ECC key"},
		{"restricted", withPublic(func(p *tpm2.TPMTPublic) { p.ObjectAttributes.Restricted = true }), "not an unrestricted signing key"},
		{"decrypt only", withPublic(func(p *tpm2.TPMTPublic) { p.ObjectAttributes.SignEncrypt = false; p.ObjectAttributes.Decrypt = true }), "not an unrestricted signing key"},
		{"P-384", withPublic(eccParams(func(e *tpm2.TPMSECCParms) { e.CurveID = tpm2.TPMECCNistP384 })), "not NIST P-256"},
		{"ECDSA SHA-384", withPublic(eccParams(func(e *tpm2.TPMSECCParms) {
			e.Scheme.Details = tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA384})
		})), "other than SHA-256"},
		{"ECDAA", withPublic(eccParams(func(e *tpm2.TPMSECCParms) {
			e.Scheme = tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDAA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDAA, &tpm2.TPMSSchemeECDAA{HashAlg: tpm2.TPMAlgSHA256})}
		})), "not ECDSA"},
		{"point off the curve", withPublic(func(p *tpm2.TPMTPublic) {
			p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: tpm2.TPM2BECCParameter{Buffer: []byte{1}}, Y: tpm2.TPM2BECCParameter{Buffer: []byte{1}}})
		}), "point"},
		{"point too long", withPublic(func(p *tpm2.TPMTPublic) {
			p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 33)}, Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)}})
		}), "not a P-256 point"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseKeyFile(c.data)
			if err == nil || !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("parseKeyFile: got %v, want an error containing %q", err, c.wantIn)
			}
		})
	}
}

func mustECC(t *testing.T, p *tpm2.TPMTPublic) *tpm2.TPMSECCParms {
	t.Helper()
	e, err := p.Parameters.ECCDetail()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustUnPEM(t testing.TB, data []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	return block.Bytes
}

// FuzzParseKeyFile: the key file parser never panics (go-tpm's unmarshalling
// meets hostile bytes here) and never changes its input; what it accepts
// marshals to a file it reads back the same. The fuzzer mutates the DER
// inside the PEM block, where mutations reach the ASN.1 and TPM parsers.
func FuzzParseKeyFile(f *testing.F) {
	k := softKeyFile(f, true, tpm2.TPMRHOwner)
	f.Add(mustUnPEM(f, marshalTest(f, k)))
	f.Add(mustUnPEM(f, berEmptyAuth(f, marshalTest(f, k))))
	f.Add(mustUnPEM(f, marshalTest(f, softKeyFile(f, false, srkHandle))))
	f.Add(tpm2.Marshal(k.public))
	f.Add([]byte{0x30, 0})
	f.Fuzz(func(t *testing.T, der []byte) {
		data := pemDER(der)
		in := bytes.Clone(data)
		k, err := parseKeyFile(in)
		if !bytes.Equal(in, data) {
			t.Fatal("parseKeyFile modified its input")
		}
		if err != nil {
			return
		}
		out, err := marshalKeyFile(k)
		if err != nil {
			t.Fatalf("marshalKeyFile of a parsed key: %v", err)
		}
		back, err := parseKeyFile(out)
		if err != nil {
			t.Fatalf("a parsed key file does not parse once marshalled: %v", err)
		}
		if back.emptyAuth != k.emptyAuth || back.parent != k.parent || !back.pub.Equal(k.pub) ||
			!bytes.Equal(tpm2.Marshal(back.public), tpm2.Marshal(k.public)) ||
			!bytes.Equal(tpm2.Marshal(back.private), tpm2.Marshal(k.private)) {
			t.Fatal("a parsed key file changes when marshalled and parsed again")
		}
	})
}

// TestPersistentSRK: with an SRK persisted at 0x81000001, new keys are made
// under it and name it as their parent.
func TestPersistentSRK(t *testing.T) {
	sim := startSimulator(t)
	if err := sim.withTPM(func(d *device) error {
		p, err := d.parent(parentID{handle: tpm2.TPMRHOwner})
		if err != nil {
			return err
		}
		_, err = tpm2.EvictControl{
			Auth:             tpm2.TPMRHOwner,
			ObjectHandle:     tpm2.NamedHandle{Handle: p.handle, Name: p.name},
			PersistentHandle: srkHandle,
		}.Execute(d.tpm)
		return err
	}); err != nil {
		t.Fatalf("persist the SRK: %v", err)
	}
	dir := t.TempDir()
	blob := filepath.Join(dir, "key.tss2")
	uri, pub := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: blob, AuthFile: writeFile(t, dir, "auth", testAuth)})
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if kf.parent != srkHandle {
		t.Errorf("key file parent 0x%08x, want the persistent SRK 0x%08x", uint32(kf.parent), uint32(srkHandle))
	}
	signVerify(t, openKey(t, uri), pub, "under the persistent SRK")

	_, err = Open(context.Background(), "tpm:handle=0x81000001?sim="+sim.addr())
	if err == nil || !strings.Contains(err.Error(), "not an unrestricted signing key") {
		t.Errorf("Open of the SRK as a signing key: got %v", err)
	}
}

// TestEngineParent: a key file of tpm2-tss-engine or the OpenSSL tpm2
// provider (parent 0x40000001, made under their primary, whose template
// has an empty unique field; emptyAuth in BER) opens and signs.
func TestEngineParent(t *testing.T) {
	sim := startSimulator(t)
	var kf *keyFile
	if err := sim.withTPM(func(d *device) error {
		p, err := d.parent(parentID{handle: tpm2.TPMRHOwner, engine: true})
		if err != nil {
			return err
		}
		template := signingTemplate(false)
		template.ObjectAttributes.Decrypt = true // as the provider makes them
		template.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
			CurveID:   tpm2.TPMECCNistP256,
			KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		})
		rsp, err := tpm2.Create{
			ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: tpm2.PasswordAuth(nil)},
			InPublic:     tpm2.New2B(template),
		}.Execute(d.tpm)
		if err != nil {
			return err
		}
		kf = &keyFile{emptyAuth: true, parent: tpm2.TPMRHOwner, public: rsp.OutPublic, private: rsp.OutPrivate}
		return nil
	}); err != nil {
		t.Fatalf("create a key under the engine primary: %v", err)
	}
	blob := filepath.Join(t.TempDir(), "engine.tss2")
	if err := os.WriteFile(blob, berEmptyAuth(t, marshalTest(t, kf)), 0o600); err != nil {
		t.Fatal(err)
	}
	k := openKey(t, "tpm:"+blob+"?sim="+sim.addr())
	signVerify(t, k, k.Public().(*ecdsa.PublicKey), "engine key")
	sim.restart() // loaded again after a reset, under the right primary
	signVerify(t, k, k.Public().(*ecdsa.PublicKey), "engine key, after a reset")
}
