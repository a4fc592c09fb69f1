/**
 * Stand-in for packages the GPU kit leaves out (nodejs-polars, sharp: large native binaries the
 * benchmarks do not need); scripts/kit/build.ts bundles it in their place. Importing works; using
 * it throws an error that says why.
 */
const fail = (): never => {
  throw new Error('this package is not included in the gpulab GPU kit (scripts/kit/build.ts leaves out nodejs-polars and sharp)');
};

const unavailable: object = new Proxy(function unavailable() {}, {
  get(target, key) {
    if (key === 'default') return unavailable;
    if (key === '__esModule') return false;
    if (typeof key === 'symbol' || key === 'then' || key in Function.prototype || Object.prototype.hasOwnProperty.call(target, key)) {
      return Reflect.get(target, key);
    }
    return fail();
  },
  apply: fail,
  construct: fail,
});

export = unavailable;
