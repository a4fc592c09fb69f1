// gpulab site: turn every chart figure into an interactive vega-embed view.
// Each <figure class="chart"> holds the spec (a JSON script) and the notebook's own SVG as an
// <img>; the image stays visible when scripts are off or a chart fails to render.
(function () {
  'use strict';
  function embed(fig) {
    var view = fig.querySelector('.chart-view');
    var specNode = fig.querySelector('script.chart-spec');
    if (!view || !specNode) return Promise.resolve();
    var spec;
    try {
      spec = JSON.parse(specNode.textContent || 'null');
    } catch (err) {
      fig.classList.add('chart-failed');
      console.error('gpulab: ' + fig.id + ' has an unreadable spec: ' + err);
      return Promise.resolve();
    }
    return window
      .vegaEmbed(view, spec, {
        mode: fig.getAttribute('data-mode') === 'vega' ? 'vega' : 'vega-lite',
        renderer: 'svg',
        // Export and view-source work offline; "open in the Vega editor" would leave the site.
        actions: { export: true, source: true, compiled: true, editor: false },
      })
      .then(function () {
        fig.classList.add('chart-live');
      })
      .catch(function (err) {
        fig.classList.add('chart-failed');
        console.error('gpulab: ' + fig.id + ' could not render: ' + err);
      });
  }
  function embedAll() {
    var figs = Array.prototype.slice.call(document.querySelectorAll('figure.chart'));
    if (!figs.length) return;
    if (typeof window.vegaEmbed !== 'function') {
      console.error('gpulab: vega-embed did not load; showing the static charts');
      return;
    }
    Promise.all(figs.map(embed)).then(function () {
      document.body.setAttribute('data-charts', 'done');
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', embedAll);
  else embedAll();
})();
