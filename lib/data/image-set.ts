/** The one image-set type of the data layer, at its base (no imports). */

/**
 * A set of images and their labels, the one image-set shape of the data layer (Fashion-MNIST's
 * 28×28 greyscale sets, the stand-in, a decoded image folder, a relabelled subset).
 */
export interface ImageSet {
  /** count·height·width·channels pixels, row-major (NHWC), 0..255. */
  images: Uint8Array;
  /** count labels (class indices; 0..9 for Fashion-MNIST). */
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  /** Channels per pixel (default 1, greyscale; `BatchSource` takes one-channel sets only). */
  channels?: number;
}
