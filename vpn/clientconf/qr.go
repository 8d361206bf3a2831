package clientconf

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"github.com/skip2/go-qrcode"
)

const (
	// terminalQuietZone is the light border of QRTerminal, in modules.
	terminalQuietZone = 2
	// pngQuietZone is the light border of QRPNG, in modules.
	pngQuietZone = 4
	// defaultScale is the module size of QRPNG when scale is 0.
	defaultScale = 8
	// maxScale bounds the module size of QRPNG; the largest code (177
	// modules and the quiet zone) is then 11840 pixels wide.
	maxScale = 64
)

// matrix returns the QR code of text at level as rows of modules, true for
// dark, without a quiet zone.
func matrix(text string, level qrcode.RecoveryLevel, levelName string, limit int) ([][]bool, error) {
	if text == "" {
		return nil, errors.New("clientconf: no text to encode in a QR code")
	}
	q, err := qrcode.New(text, level)
	if err != nil {
		return nil, fmt.Errorf("clientconf: text is %d bytes, too long for a QR code at error correction level %s (which holds %d bytes of arbitrary text)", len(text), levelName, limit)
	}
	q.DisableBorder = true
	return q.Bitmap(), nil
}

// QRTerminal renders text as a QR code for a terminal. It uses error
// correction level L, the lowest: a full-tunnel config of about 400 bytes
// is then a version 13 code of 69 modules, 73 columns wide with the quiet
// zone, where level M would need 81 columns. Up to 458 bytes of config
// fit in 80 columns.
//
// Each character cell holds two modules, one above the other, drawn with
// the half blocks "▀", "▄", "█" and the space. Light modules are drawn
// with blocks and dark modules are left as spaces, so the code scans on
// dark-themed terminals, whose background becomes the dark modules. The
// quiet zone is 2 modules on the left, right and top, and 2 or 3 at the
// bottom, to fill the last row of cells. The lines are joined by "\n" and
// the result ends with a newline. Text longer than level L can hold (2953
// bytes) is an error that says how long it is.
func QRTerminal(text string) (string, error) {
	m, err := matrix(text, qrcode.Low, "L", 2953)
	if err != nil {
		return "", err
	}
	n := len(m)
	width := n + 2*terminalQuietZone
	height := width + width%2
	light := func(x, y int) bool {
		x -= terminalQuietZone
		y -= terminalQuietZone
		if x < 0 || y < 0 || x >= n || y >= n {
			return true
		}
		return !m[y][x]
	}
	var b strings.Builder
	b.Grow(height / 2 * (width*3 + 1))
	for y := 0; y < height; y += 2 {
		for x := 0; x < width; x++ {
			top, bottom := light(x, y), light(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// QRPNG renders text as a PNG QR code, black on white, each module scale
// pixels square (0 means 8, the most is 64), with a 4-module quiet zone.
// It uses error correction level M, as a PNG has no width limit; text
// longer than level M can hold (2331 bytes) is an error that says how long
// it is.
func QRPNG(text string, scale int) ([]byte, error) {
	if scale == 0 {
		scale = defaultScale
	}
	if scale < 1 || scale > maxScale {
		return nil, fmt.Errorf("clientconf: scale %d is outside 1..%d", scale, maxScale)
	}
	m, err := matrix(text, qrcode.Medium, "M", 2331)
	if err != nil {
		return nil, err
	}
	side := (len(m) + 2*pngQuietZone) * scale
	img := image.NewPaletted(image.Rect(0, 0, side, side), color.Palette{color.Gray{Y: 0xff}, color.Gray{}})
	for y, row := range m {
		for x, dark := range row {
			if !dark {
				continue
			}
			px, py := (x+pngQuietZone)*scale, (y+pngQuietZone)*scale
			for dy := range scale {
				off := img.PixOffset(px, py+dy)
				for dx := range scale {
					img.Pix[off+dx] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("clientconf: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}
