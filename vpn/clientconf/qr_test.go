package clientconf

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// zbarDecode decodes the QR code in the PNG data with `zbarimg --raw -q`.
// zbarimg prints the data of each symbol it finds followed by one "\n" of
// its own, so exactly one trailing "\n" is removed: a config, which ends
// with "\n", comes back as its text followed by that extra "\n".
func zbarDecode(t *testing.T, data []byte) string {
	t.Helper()
	zbarimg := requireCommand(t, "zbarimg", "zbar-tools")
	path := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(zbarimg, "--raw", "-q", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zbarimg: %v\n%s", err, stderr.String())
	}
	text, ok := strings.CutSuffix(string(out), "\n")
	if !ok {
		t.Fatalf("zbarimg output %q does not end with its newline", out)
	}
	return text
}

// pngConfig is a rendered config of about 350 bytes.
func pngConfig(t *testing.T) string {
	c := fullTunnel()
	c.PresharedKey = ""
	text := c.Render()
	if len(text) < 320 || len(text) > 380 {
		t.Fatalf("test config is %d bytes, want about 350", len(text))
	}
	return text
}

func TestQRPNG(t *testing.T) {
	text := pngConfig(t)
	for _, scale := range []int{0, 3, 8} {
		data, err := QRPNG(text, scale)
		if err != nil {
			t.Fatalf("QRPNG(scale %d): %v", scale, err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("scale %d: not a PNG: %v", scale, err)
		}
		px := scale
		if px == 0 {
			px = 8
		}
		// 338 bytes at level M is a version 14 code: 73 modules, and
		// 4 modules of quiet zone on each side.
		if want := (73 + 8) * px; cfg.Width != want || cfg.Height != want {
			t.Errorf("scale %d: image is %dx%d, want %dx%d", scale, cfg.Width, cfg.Height, want, want)
		}
		if got := zbarDecode(t, data); got != text {
			t.Errorf("scale %d: zbarimg decoded\n%q\nwant\n%q", scale, got, text)
		}
	}
}

func TestQRPNGQuietZone(t *testing.T) {
	data, err := QRPNG("edge-vpn", 2)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	dark := func(x, y int) bool {
		g := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
		return g.Y < 0x80
	}
	// The quiet zone is 4 modules of 2 pixels; the finder pattern's
	// corner is dark right after it.
	for i := 0; i < 8; i++ {
		for j := b.Min.X; j < b.Max.X; j++ {
			if dark(j, i) || dark(i, j) || dark(j, b.Max.Y-1-i) || dark(b.Max.X-1-i, j) {
				t.Fatalf("dark pixel in the quiet zone near (%d, %d)", i, j)
			}
		}
	}
	if !dark(8, 8) {
		t.Error("no finder pattern right after the quiet zone")
	}
}

func TestQRPNGScale(t *testing.T) {
	for _, scale := range []int{-1, 65} {
		if _, err := QRPNG("edge-vpn", scale); err == nil || !strings.Contains(err.Error(), "scale") {
			t.Errorf("QRPNG(scale %d): error %v, want one about the scale", scale, err)
		}
	}
}

// terminalImage turns the output of QRTerminal back into an image: each
// character cell is two modules, the upper and the lower, light where the
// glyph is drawn. border adds that many dark modules around it, as the
// background of a dark-themed terminal would.
func terminalImage(t *testing.T, out string, border, scale int) *image.Gray {
	t.Helper()
	body, ok := strings.CutSuffix(out, "\n")
	if !ok {
		t.Fatalf("output does not end with a newline")
	}
	lines := strings.Split(body, "\n")
	width := utf8.RuneCountInString(lines[0])
	modules := func(r rune) (top, bottom bool) {
		switch r {
		case '█':
			return true, true
		case '▀':
			return true, false
		case '▄':
			return false, true
		case ' ':
			return false, false
		}
		t.Fatalf("unexpected character %q", r)
		return
	}
	w, h := width+2*border, 2*len(lines)+2*border
	img := image.NewGray(image.Rect(0, 0, w*scale, h*scale))
	set := func(x, y int) {
		for dy := range scale {
			for dx := range scale {
				img.SetGray((x+border)*scale+dx, (y+border)*scale+dy, color.Gray{Y: 0xff})
			}
		}
	}
	for row, line := range lines {
		if n := utf8.RuneCountInString(line); n != width {
			t.Fatalf("line %d is %d characters wide, line 0 is %d", row, n, width)
		}
		x := 0
		for _, r := range line {
			top, bottom := modules(r)
			if top {
				set(x, 2*row)
			}
			if bottom {
				set(x, 2*row+1)
			}
			x++
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestQRTerminal(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			text := tc.c.Render()
			out, err := QRTerminal(text)
			if err != nil {
				t.Fatal(err)
			}
			for _, border := range []int{0, 6} {
				img := terminalImage(t, out, border, 4)
				if got := zbarDecode(t, encodePNG(t, img)); got != text {
					t.Errorf("dark border %d: zbarimg decoded\n%q\nwant\n%q", border, got, text)
				}
			}
		})
	}
}

// TestQRTerminalSize pins the size that QRTerminal's doc states for a
// full-tunnel config of about 400 bytes.
func TestQRTerminalSize(t *testing.T) {
	text := fullTunnel().Render()
	out, err := QRTerminal(text)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	width := utf8.RuneCountInString(lines[0])
	// Version 13 at level L: 69 modules and 2 of quiet zone each side;
	// 73 module rows plus one light row in 37 lines.
	if len(text) != 398 || width != 73 || len(lines) != 37 {
		t.Errorf("%d-byte config: %d columns, %d lines; want 398 bytes, 73 columns, 37 lines", len(text), width, len(lines))
	}
	// The quiet zone: the first line, the last line and the two outer
	// columns are all light.
	full := strings.Repeat("█", width)
	if lines[0] != full || lines[len(lines)-1] != full {
		t.Errorf("first or last line is not all light:\n%s", out)
	}
	for i, line := range lines {
		r := []rune(line)
		if string(r[:2]) != "██" || string(r[len(r)-2:]) != "██" {
			t.Errorf("line %d lacks the 2-module quiet zone: %q", i, line)
		}
	}
}

// TestQRTerminalWidth checks that configs up to the size QRTerminal's doc
// names fit in 80 columns.
func TestQRTerminalWidth(t *testing.T) {
	text := fullTunnel().Render()
	text += "# " + strings.Repeat("x", 458-len(text)-3) + "\n"
	out, err := QRTerminal(text)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(out, "\n")
	if n := utf8.RuneCountInString(line); n > 80 {
		t.Errorf("%d-byte text: %d columns, want at most 80", len(text), n)
	}
}

func TestQRTooLong(t *testing.T) {
	long := strings.Repeat("x", 3000)
	if _, err := QRTerminal(long); err == nil || !strings.Contains(err.Error(), "text is 3000 bytes, too long") {
		t.Errorf("QRTerminal of 3000 bytes: error %v, want one saying 3000 bytes is too long", err)
	}
	if _, err := QRPNG(long, 0); err == nil || !strings.Contains(err.Error(), "text is 3000 bytes, too long") {
		t.Errorf("QRPNG of 3000 bytes: error %v, want one saying 3000 bytes is too long", err)
	}
	// Level M of QRPNG holds less than level L of QRTerminal.
	mid := strings.Repeat("x", 2400)
	if _, err := QRPNG(mid, 0); err == nil || !strings.Contains(err.Error(), "text is 2400 bytes, too long") {
		t.Errorf("QRPNG of 2400 bytes: error %v, want one saying 2400 bytes is too long", err)
	}
	if _, err := QRTerminal(mid); err != nil {
		t.Errorf("QRTerminal of 2400 bytes: %v", err)
	}
}

func TestQREmpty(t *testing.T) {
	if _, err := QRTerminal(""); err == nil {
		t.Error("QRTerminal accepted empty text")
	}
	if _, err := QRPNG("", 0); err == nil {
		t.Error("QRPNG accepted empty text")
	}
}
