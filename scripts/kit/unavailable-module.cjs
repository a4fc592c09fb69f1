// Stand-in for packages the GPU kit leaves out (nodejs-polars, sharp: large native binaries the
// benchmarks do not need). Importing works; using it throws an error that says why.
'use strict';
const fail = () => {
  throw new Error('this package is not included in the gpulab GPU kit (scripts/kit/build.sh leaves out nodejs-polars and sharp)');
};
const stub = new Proxy(function unavailable() {}, {
  get(target, key) {
    if (key === 'default') return stub;
    if (key === '__esModule') return false;
    if (typeof key === 'symbol' || key === 'then' || key in Function.prototype || Object.prototype.hasOwnProperty.call(target, key)) {
      return Reflect.get(target, key);
    }
    return fail();
  },
  apply: fail,
  construct: fail,
});
module.exports = stub;
