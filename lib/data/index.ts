/**
 * The data layer: Fashion-MNIST (real or generated stand-in), the IDX format, fast batching,
 * and tabular data through nodejs-polars.
 *
 * ```ts
 * import { data } from 'gpulab';
 * const ds = await data.loadFashionMnist();
 * nb.announce(ds);   // the loader reports the stand-in (ds.source); the notebook layer shows it
 * const train = new data.BatchSource(ds.train, { batchSize: 100, shuffle: true, seed: 0 });
 * ```
 */
export * from './idx';
export * from './image-set';
export * from './fashion-mnist';
export * from './batches';
export { generateImages } from './stand-in';
export { mulberry32, mixSeed } from '../random';
export * from './tabular';
