package client

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Plot geometry, in pixels.
const (
	plotW, plotH                       = 800, 480
	marginL, marginR, marginT, marginB = 72, 24, 40, 56
	glyphScale                         = 2 // each font pixel is a 2x2 block
	glyphW, glyphH                     = 3, 5
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colAxis       = color.RGBA{0, 0, 0, 255}
	colGrid       = color.RGBA{225, 225, 225, 255}
	colTrain      = color.RGBA{31, 119, 180, 255}
	colVal        = color.RGBA{255, 127, 14, 255}
)

// PlotLoss draws the training loss (and the validation loss where it was
// measured) against the step as a PNG at path: axes, ticks with labels, a
// light grid, the two curves and a legend. It is drawn pixel by pixel
// with a built-in 3x5 bitmap font, so it needs no font files.
func PlotLoss(path string, pts []MetricPoint) error {
	img, err := RenderLoss(pts)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plot-*.png")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	err = png.Encode(tmp, img)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// RenderLoss draws the loss plot of PlotLoss into an image.
func RenderLoss(pts []MetricPoint) (*image.RGBA, error) {
	if len(pts) == 0 {
		return nil, errNoPoints
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	see := func(x, y float64) {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return
		}
		xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
		ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
	}
	for _, p := range pts {
		see(float64(p.Step), p.TrainLoss)
		if p.ValLoss != nil {
			see(float64(p.Step), *p.ValLoss)
		}
	}
	if math.IsInf(ymin, 0) {
		return nil, fmt.Errorf("plot: every loss is NaN or infinite")
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymin, ymax = ymin-0.5, ymax+0.5
	}
	pad := (ymax - ymin) * 0.05
	ymin, ymax = ymin-pad, ymax+pad
	if ymin < 0 && ymin+pad >= 0 {
		ymin = 0
	}

	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	fill(img, img.Bounds(), colBackground)
	x0, x1 := marginL, plotW-marginR
	y0, y1 := plotH-marginB, marginT // y grows downwards
	px := func(x float64) int { return x0 + int(math.Round((x-xmin)/(xmax-xmin)*float64(x1-x0))) }
	py := func(y float64) int { return y0 - int(math.Round((y-ymin)/(ymax-ymin)*float64(y0-y1))) }

	// Grid, ticks and labels.
	for _, t := range niceTicks(xmin, xmax, 8) {
		x := px(t)
		line(img, x, y0, x, y1, colGrid)
		line(img, x, y0, x, y0+6, colAxis)
		s := formatTick(t)
		drawText(img, x-textWidth(s)/2, y0+10, s, colAxis)
	}
	for _, t := range niceTicks(ymin, ymax, 6) {
		y := py(t)
		line(img, x0, y, x1, y, colGrid)
		line(img, x0-6, y, x0, y, colAxis)
		s := formatTick(t)
		drawText(img, x0-10-textWidth(s), y-glyphH*glyphScale/2, s, colAxis)
	}
	// Axes.
	line(img, x0, y0, x1, y0, colAxis)
	line(img, x0, y0, x0, y1, colAxis)
	drawText(img, (x0+x1)/2-textWidth("step")/2, plotH-20, "step", colAxis)
	drawText(img, 8, marginT-28, "loss", colAxis)

	// Curves.
	var prevTrain, prevVal *image.Point
	for _, p := range pts {
		x := px(float64(p.Step))
		if !math.IsNaN(p.TrainLoss) && !math.IsInf(p.TrainLoss, 0) {
			pt := image.Pt(x, py(p.TrainLoss))
			if prevTrain != nil {
				thickLine(img, prevTrain.X, prevTrain.Y, pt.X, pt.Y, colTrain)
			}
			prevTrain = &pt
		}
		if p.ValLoss != nil && !math.IsNaN(*p.ValLoss) && !math.IsInf(*p.ValLoss, 0) {
			pt := image.Pt(x, py(*p.ValLoss))
			if prevVal != nil {
				thickLine(img, prevVal.X, prevVal.Y, pt.X, pt.Y, colVal)
			}
			fill(img, image.Rect(pt.X-3, pt.Y-3, pt.X+4, pt.Y+4), colVal)
			prevVal = &pt
		}
	}

	// Legend.
	lx, ly := x1-140, marginT-28
	thickLine(img, lx, ly+5, lx+24, ly+5, colTrain)
	drawText(img, lx+30, ly, "train", colAxis)
	if prevVal != nil {
		thickLine(img, lx+84, ly+5, lx+108, ly+5, colVal)
		drawText(img, lx+114, ly, "val", colAxis)
	}
	return img, nil
}

// niceTicks returns about n round values (1, 2 or 5 times a power of ten
// apart) covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	span := hi - lo
	if span <= 0 || n < 1 {
		return []float64{lo}
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		out = append(out, math.Round(t/step)*step)
	}
	return out
}

func formatTick(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e7 {
		return strconv.FormatInt(int64(v), 10)
	}
	s := strconv.FormatFloat(v, 'g', 4, 64)
	return strings.ToLower(s)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a one-pixel line with Bresenham's algorithm.
func line(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := 1, 1
	if xa > xb {
		sx = -1
	}
	if ya > yb {
		sy = -1
	}
	e := dx + dy
	for {
		if (image.Point{xa, ya}).In(img.Bounds()) {
			img.SetRGBA(xa, ya, c)
		}
		if xa == xb && ya == yb {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			xa += sx
		}
		if e2 <= dx {
			e += dx
			ya += sy
		}
	}
}

func thickLine(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) {
	for _, d := range []image.Point{{0, 0}, {1, 0}, {0, 1}} {
		line(img, xa+d.X, ya+d.Y, xb+d.X, yb+d.Y, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// glyphs is a 3x5 bitmap font for the characters tick labels and the
// legend use; each string is a row, '#' a lit pixel.
var glyphs = map[rune][glyphH]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"},
	'1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"},
	'3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"},
	'5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"},
	'7': {"###", "..#", ".#.", ".#.", ".#."},
	'8': {"###", "#.#", "###", "#.#", "###"},
	'9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."},
	'-': {"...", "...", "###", "...", "..."},
	'+': {"...", ".#.", "###", ".#.", "..."},
	'a': {"...", "###", "..#", "###", "###"},
	'e': {"###", "#.#", "###", "#..", "###"},
	'i': {".#.", "...", ".#.", ".#.", ".#."},
	'l': {"#..", "#..", "#..", "#..", "###"},
	'n': {"...", "##.", "#.#", "#.#", "#.#"},
	'o': {"...", "###", "#.#", "#.#", "###"},
	'p': {"###", "#.#", "###", "#..", "#.."},
	'r': {"...", "###", "#..", "#..", "#.."},
	's': {"###", "#..", "###", "..#", "###"},
	't': {".#.", "###", ".#.", ".#.", ".##"},
	'v': {"...", "#.#", "#.#", "#.#", ".#."},
}

func textWidth(s string) int { return len([]rune(s)) * (glyphW + 1) * glyphScale }

// drawText draws s with its top-left corner at (x, y); unknown characters
// are left blank.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		if g, ok := glyphs[r]; ok {
			for row := 0; row < glyphH; row++ {
				for col := 0; col < glyphW; col++ {
					if g[row][col] == '#' {
						fill(img, image.Rect(x+col*glyphScale, y+row*glyphScale, x+(col+1)*glyphScale, y+(row+1)*glyphScale), c)
					}
				}
			}
		}
		x += (glyphW + 1) * glyphScale
	}
}
