/**
 * The generated stand-in for Fashion-MNIST: same shapes (28×28 uint8, 10 classes, 60,000 train
 * and 10,000 test), deterministic from a seed, and learnable.
 *
 * Each image is a class-dependent, garment-like silhouette (T-shirt, trouser, pullover, dress,
 * coat, sandal, shirt, sneaker, bag, ankle boot) drawn with per-image random proportions,
 * position, scale, brightness and texture, plus pixel noise. The upper-body garments overlap in
 * their proportions on purpose (as in the real data), so a model learns it well but not perfectly.
 *
 * It is NOT Fashion-MNIST: every notebook that uses it says so (`nb.announce`).
 */
import { mulberry32 } from '../random';
import type { ImageSet } from './image-set';

const W = 28;
const H = 28;

/** Per-image drawing state: a float canvas and the random placement transform. */
class Painter {
  readonly canvas = new Float32Array(W * H);
  sx = 1;
  sy = 1;
  dx = 0;
  dy = 0;

  reset(rand: () => number): void {
    this.canvas.fill(0);
    this.sx = 0.88 + 0.22 * rand();
    this.sy = 0.88 + 0.22 * rand();
    this.dx = (rand() - 0.5) * 3;
    this.dy = (rand() - 0.5) * 3;
  }

  private X(x: number): number {
    return 14 + this.sx * (x - 14) + this.dx;
  }

  private Y(y: number): number {
    return 14 + this.sy * (y - 14) + this.dy;
  }

  /**
   * Fill a trapezoid in design coordinates (0..28): rows y0..y1, spanning [xl0, xr0] at y0 and
   * [xl1, xr1] at y1, linearly in between. `v` is written (0 cuts a hole).
   */
  quad(y0: number, y1: number, xl0: number, xr0: number, xl1: number, xr1: number, v = 1): void {
    const Y0 = this.Y(y0);
    const Y1 = this.Y(y1);
    const r0 = Math.max(0, Math.ceil(Y0 - 0.5));
    const r1 = Math.min(H - 1, Math.floor(Y1 - 0.5));
    for (let r = r0; r <= r1; r++) {
      const t = Y1 > Y0 ? (r + 0.5 - Y0) / (Y1 - Y0) : 0;
      const xl = this.X(xl0 + (xl1 - xl0) * t);
      const xr = this.X(xr0 + (xr1 - xr0) * t);
      const c0 = Math.max(0, Math.ceil(xl - 0.5));
      const c1 = Math.min(W - 1, Math.floor(xr - 0.5));
      for (let c = c0; c <= c1; c++) this.canvas[r * W + c] = v;
    }
  }

  /** Fill an axis-aligned rectangle [x0, x1] × [y0, y1] in design coordinates. */
  rect(x0: number, y0: number, x1: number, y1: number, v = 1): void {
    this.quad(y0, y1, x0, x1, x0, x1, v);
  }

  /** Fill an ellipse in design coordinates; with `inner` > 0 only the ring outside inner·radius. */
  ellipse(cx: number, cy: number, rx: number, ry: number, v = 1, inner = 0): void {
    const CX = this.X(cx);
    const CY = this.Y(cy);
    const RX = rx * this.sx;
    const RY = ry * this.sy;
    const r0 = Math.max(0, Math.ceil(CY - RY - 0.5));
    const r1 = Math.min(H - 1, Math.floor(CY + RY - 0.5));
    const c0 = Math.max(0, Math.ceil(CX - RX - 0.5));
    const c1 = Math.min(W - 1, Math.floor(CX + RX - 0.5));
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const u = (c + 0.5 - CX) / RX;
        const w = (r + 0.5 - CY) / RY;
        const d = u * u + w * w;
        if (d <= 1 && d >= inner * inner) this.canvas[r * W + c] = v;
      }
    }
  }
}

/** Uniform in [a, b). */
function U(rand: () => number, a: number, b: number): number {
  return a + (b - a) * rand();
}

/** A torso with optional sleeves; shared by T-shirt, pullover, coat and shirt. */
function upperBody(
  p: Painter,
  rand: () => number,
  o: { top: number; bottom: number; half: number; sleeve: number; sleeveW: number; flare: number; gap: boolean },
): void {
  const cx = 14;
  const L = cx - o.half;
  const R = cx + o.half;
  p.quad(o.top, o.bottom, L, R, L - o.flare, R + o.flare);
  // sleeves: from the shoulder outward and down
  const sl = o.sleeve;
  const out = Math.min(sl * 0.45, 4.5);
  const g = o.gap ? 0.9 : 0;
  p.quad(o.top, o.top + sl, L - o.sleeveW - g, L - g, L - o.sleeveW - out - g, L - out * 0.6 - g);
  p.quad(o.top, o.top + sl, R + g, R + o.sleeveW + g, R + out * 0.6 + g, R + o.sleeveW + out + g);
  if (o.gap) {
    // shoulders stay joined
    p.quad(o.top, o.top + 1.6, L - o.sleeveW, R + o.sleeveW, L - o.sleeveW, R + o.sleeveW);
  }
  // neckline
  p.ellipse(cx, o.top - 0.2, U(rand, 2, 3.4), U(rand, 1.2, 2.4), 0);
}

/** Draw one garment of class `label` (0–9) into the painter's canvas. */
function drawGarment(p: Painter, label: number, rand: () => number): void {
  switch (label) {
    case 0: {
      // T-shirt/top: short sleeves (sometimes none: a top)
      const top = U(rand, 3, 5);
      upperBody(p, rand, {
        top,
        bottom: U(rand, 22, 25.5),
        half: U(rand, 5.5, 7.5),
        sleeve: rand() < 0.2 ? 0 : U(rand, 3, 8),
        sleeveW: U(rand, 2.5, 4),
        flare: U(rand, -0.5, 1),
        gap: false,
      });
      break;
    }
    case 1: {
      // Trouser: waistband and two legs
      const top = U(rand, 2, 4);
      const bottom = U(rand, 24.5, 26.5);
      const half = U(rand, 4, 6);
      const gapTop = U(rand, 0.3, 1);
      const gapBottom = U(rand, 1, 3);
      const flare = U(rand, -0.5, 1.5);
      p.rect(14 - half, top, 14 + half, top + 2.5);
      p.quad(top + 2, bottom, 14 - half, 14 - gapTop, 14 - half - flare, 14 - gapBottom);
      p.quad(top + 2, bottom, 14 + gapTop, 14 + half, 14 + gapBottom, 14 + half + flare);
      break;
    }
    case 2: {
      // Pullover: long sleeves, ribbed hem
      const top = U(rand, 3, 5);
      const bottom = U(rand, 21, 25);
      upperBody(p, rand, {
        top,
        bottom,
        half: U(rand, 5, 7),
        sleeve: bottom - top - U(rand, 0, 3),
        sleeveW: U(rand, 2.5, 3.5),
        flare: U(rand, -0.5, 0.5),
        gap: rand() < 0.6,
      });
      break;
    }
    case 3: {
      // Dress: narrow bodice flaring to a wide hem, thin straps or short sleeves
      const top = U(rand, 2, 5);
      const waist = U(rand, 9, 13);
      const bottom = U(rand, 24, 26.5);
      const half = U(rand, 2.8, 4.5);
      const hem = U(rand, 6, 9.5);
      p.quad(top, waist, 14 - half - 0.5, 14 + half + 0.5, 14 - half + 0.5, 14 + half - 0.5);
      p.quad(waist, bottom, 14 - half + 0.5, 14 + half - 0.5, 14 - hem, 14 + hem);
      if (rand() < 0.5) {
        p.rect(14 - half - 0.5, top - 2, 14 - half + 0.8, top);
        p.rect(14 + half - 0.8, top - 2, 14 + half + 0.5, top);
      }
      break;
    }
    case 4: {
      // Coat: long, wide, long sleeves, a dark opening down the middle and a collar
      const top = U(rand, 2.5, 4.5);
      const bottom = U(rand, 23.5, 26.5);
      upperBody(p, rand, {
        top,
        bottom,
        half: U(rand, 6, 7.8),
        sleeve: bottom - top - U(rand, 1, 4),
        sleeveW: U(rand, 2.8, 4),
        flare: U(rand, 0, 1.2),
        gap: rand() < 0.4,
      });
      const open = U(rand, 0.25, 0.6);
      p.quad(top + 3, bottom, 14 - open, 14 + open, 14 - open, 14 + open, U(rand, 0.1, 0.45));
      p.quad(top - 0.5, top + 4, 14 - 3.5, 14 - 1, 14 - 1.5, 14 - 0.2, 0.75);
      p.quad(top - 0.5, top + 4, 14 + 1, 14 + 3.5, 14 + 0.2, 14 + 1.5, 0.75);
      break;
    }
    case 5: {
      // Sandal: a thin sole and a few straps, low in the frame
      const sole = U(rand, 18, 21);
      const x0 = U(rand, 2, 4);
      const x1 = U(rand, 24, 26);
      p.quad(sole, sole + U(rand, 1.2, 2.2), x0, x1, x0 + 0.5, x1 - 0.5, U(rand, 0.6, 1));
      const straps = 2 + Math.floor(rand() * 3);
      const height = U(rand, 5, 10);
      for (let s = 0; s < straps; s++) {
        const xs = x0 + ((x1 - x0) * (s + 0.5)) / straps + U(rand, -1, 1);
        const w = U(rand, 0.8, 1.6);
        const y = sole - height * U(rand, 0.4, 1);
        p.quad(y, sole, xs - w, xs + w, xs - w - U(rand, -2, 2), xs + w);
      }
      if (rand() < 0.6) p.quad(sole - height, sole - height + 1.2, x1 - 7, x1 - 1, x1 - 7, x1 - 1, U(rand, 0.6, 1));
      break;
    }
    case 6: {
      // Shirt: any sleeve length, collar and a button placket
      const top = U(rand, 3, 5);
      const bottom = U(rand, 21.5, 25.5);
      upperBody(p, rand, {
        top,
        bottom,
        half: U(rand, 5.2, 7.2),
        sleeve: rand() < 0.3 ? U(rand, 3, 8) : bottom - top - U(rand, 0, 4),
        sleeveW: U(rand, 2.4, 3.6),
        flare: U(rand, -0.3, 0.8),
        gap: rand() < 0.5,
      });
      p.quad(top - 0.8, top + 2.5, 14 - 3, 14 + 3, 14 - 1, 14 + 1, U(rand, 0.55, 0.9));
      if (rand() < 0.7) p.rect(13.6, top + 2.5, 14.4, bottom, U(rand, 0.3, 0.7));
      break;
    }
    case 7: {
      // Sneaker: low shoe, toe to the left, heel to the right
      const sole = U(rand, 19, 22);
      const x0 = U(rand, 1.5, 4);
      const x1 = U(rand, 24, 26.5);
      const h = U(rand, 5, 8);
      p.rect(x0, sole, x1, sole + U(rand, 1.5, 2.5), U(rand, 0.7, 1));
      p.quad(sole - h, sole, x1 - U(rand, 7, 10), x1, x0 + 1.5, x1);
      if (rand() < 0.7) p.quad(sole - h * 0.7, sole - h * 0.55, x0 + 6, x1 - 4, x0 + 6, x1 - 4, U(rand, 0.3, 0.6));
      break;
    }
    case 8: {
      // Bag: a box with a handle
      const top = U(rand, 8, 13);
      const bottom = U(rand, 22, 26);
      const half = U(rand, 7, 11);
      p.quad(top, bottom, 14 - half + U(rand, 0, 1.5), 14 + half - U(rand, 0, 1.5), 14 - half, 14 + half);
      const hw = U(rand, 3, 6);
      const hh = U(rand, 3, top - 1.5);
      p.ellipse(14, top, hw, hh, 1, U(rand, 0.6, 0.8));
      if (rand() < 0.5) p.rect(14 - half + 1, top + 2, 14 + half - 1, top + 2.8, U(rand, 0.3, 0.6));
      break;
    }
    default: {
      // Ankle boot: a tall shaft at the heel (right) and the foot pointing left
      const sole = U(rand, 21, 24);
      const shaftTop = U(rand, 3, 8);
      const x0 = U(rand, 1.5, 4);
      const x1 = U(rand, 23, 26);
      const shaftL = U(rand, 11, 15);
      p.rect(shaftL, shaftTop, x1, sole);
      p.quad(sole - U(rand, 6, 9), sole, shaftL, shaftL, x0, shaftL);
      p.rect(x0, sole, x1, sole + U(rand, 1.5, 2.5), U(rand, 0.5, 1));
      break;
    }
  }
}


/**
 * Generate `count` stand-in images from `seed`: labels cycle through the classes in a seeded
 * random order (balanced: count/10 per class, ±1), each drawn with its own random proportions,
 * placement, brightness, texture and noise. Same seed and count → the same bytes.
 */
export function generateImages(count: number, seed: number): ImageSet {
  const rand = mulberry32(seed);
  const images = new Uint8Array(count * W * H);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % 10;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = labels[i];
    labels[i] = labels[j];
    labels[j] = t;
  }
  const p = new Painter();
  for (let i = 0; i < count; i++) {
    p.reset(rand);
    drawGarment(p, labels[i], rand);
    const bright = U(rand, 110, 250);
    const stripes = rand() < 0.35 ? U(rand, 0.1, 0.3) : 0;
    const period = U(rand, 2, 5);
    const shade = U(rand, -0.25, 0.25); // top-to-bottom shading
    const noise = U(rand, 12, 38);
    const off = i * W * H;
    for (let r = 0; r < H; r++) {
      const rowShade = 1 + shade * (r / H - 0.5);
      const stripe = stripes ? 1 - stripes * (0.5 + 0.5 * Math.sin((2 * Math.PI * r) / period)) : 1;
      for (let c = 0; c < W; c++) {
        const v = p.canvas[r * W + c];
        // cheap approximately-normal noise: sum of three uniforms
        const n = (rand() + rand() + rand() - 1.5) * 2;
        let x = v > 0 ? bright * v * rowShade * stripe + noise * n : n * 6 - 4;
        x = x < 0 ? 0 : x > 255 ? 255 : x;
        images[off + r * W + c] = x + 0.5;
      }
    }
  }
  return { images, labels, count, height: 28, width: 28 };
}
