/** lib/monitor/nvidia-smi.ts: parsing what nvidia-smi really prints (recorded outputs in test/fixtures/nvidia-smi). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as monitor from '../../../lib/monitor';
import { fixture as fixtureFile } from '../../support/helpers';

const fixture = (name: string) => fixtureFile('nvidia-smi', name);

test('parses recorded nvidia-smi CSV: units stripped, repeated headers skipped, timestamps read', () => {
  const r = monitor.readNvidiaSmiCsv(fixture('rtx2070-repeated-header.csv'));
  assert.equal(r.errors.length, 0);
  assert.equal(r.records.length, 6, 'six samples, each under its own repeated header');
  assert.deepEqual(r.fields, ['timestamp', 'index', 'name', 'pci.bus_id', 'utilization.gpu', 'utilization.memory', 'memory.used', 'memory.free', 'memory.total']);
  assert.equal(r.units['utilization.gpu'], '%');
  assert.equal(r.units['memory.used'], 'MiB');
  const first = r.records[0];
  assert.equal(first.raw.name, 'NVIDIA GeForce RTX 2070');
  assert.equal(first.raw['pci.bus_id'], '00000000:01:00.0');
  assert.equal(first.values['utilization.gpu'], 22);
  assert.equal(first.values['memory.used'], 841);
  assert.equal(first.values['memory.total'], 8192);
  assert.equal(first.timestampMs, new Date(2023, 5, 22, 18, 56, 56, 252).getTime());
  assert.deepEqual(r.records.map((x) => x.values['utilization.gpu']), [22, 24, 29, 28, 20, 37]);
  assert.equal(r.records[1].timestampMs! - r.records[0].timestampMs!, 1022);
});

test('parses a -l loop with index first, a -lms power stream, and an idle GPU whose zeros are real', () => {
  const v100 = monitor.readNvidiaSmiCsv(fixture('v100-loop-5s.csv'));
  assert.equal(v100.records.length, 8);
  assert.equal(v100.records[0].values.index, 0);
  assert.equal(v100.records[5].values['utilization.gpu'], 32);
  assert.equal(v100.records[0].values['memory.total'], 32480);
  const power = monitor.readNvidiaSmiCsv(fixture('power-loop-50ms.csv'));
  assert.deepEqual(power.records.slice(0, 3).map((x) => x.values['power.draw']), [22.89, 22.73, 22.73]);
  assert.equal(power.units['power.draw'], 'W');
  const h100 = monitor.readNvidiaSmiCsv(fixture('h100-idle.csv'));
  const g = monitor.gpuSampleFromRecord(h100.records[0], 0);
  assert.equal(g.name, 'NVIDIA H100 80GB HBM3');
  assert.equal(g.utilizationPct, 0, 'an idle GPU reports a real 0 %');
  assert.equal(g.memoryUsedMiB, 0);
  assert.equal(g.memoryTotalMiB, 81559);
  assert.equal(g.powerW, null, 'power.draw was not queried: null, not 0');
  assert.equal(h100.records[0].raw.driver_version, '595.71.05');
});

test('[N/A] becomes null with the printed text kept, never 0', () => {
  const r = monitor.readNvidiaSmiCsv(fixture('rtx5070ti-not-available.csv'));
  assert.equal(r.errors.length, 0);
  const rec = r.records[0];
  assert.equal(rec.values['memory.total'], 16303);
  assert.equal(rec.values['power.limit'], null);
  assert.equal(rec.missing['power.limit'], '[N/A]');
  assert.equal(rec.missing['power.default_limit'], '[N/A]');
  const ns = monitor.parseNvidiaSmiCsv('name, utilization.gpu [%], power.draw [W]\nTesla T4, [Not Supported], 27.5 W\n');
  assert.equal(ns.records[0].values['utilization.gpu'], null);
  assert.equal(ns.records[0].missing['utilization.gpu'], '[Not Supported]');
  assert.equal(ns.records[0].values['power.draw'], 27.5);
});

test('a malformed recording keeps the good lines and names each bad line and why', () => {
  const r = monitor.readNvidiaSmiCsv(fixture('malformed.csv'));
  assert.deepEqual(r.records.map((x) => x.line), [2, 3, 5]);
  assert.deepEqual(r.errors.map((e) => e.line), [4, 6, 7]);
  assert.match(r.errors[0].reason, /not a CSV data line/);
  assert.match(r.errors[0].text, /NVIDIA-SMI has failed/);
  assert.match(r.errors[1].reason, /'utilization\.gpu' is not a number: "lots %"/);
  assert.match(r.errors[2].reason, /expected 9 fields, got 7 \(line cut off\?\)/);
  assert.throws(() => monitor.readNvidiaSmiCsv(fixture('malformed.csv'), { strict: true }), /malformed\.csv:4: not a CSV data line/);
  assert.throws(() => monitor.readNvidiaSmiCsv(fixture('no-such.csv')), /no-such\.csv: cannot read nvidia-smi CSV \(ENOENT\)/);
});

test('noheader output needs the field list; the stream reader gives the same records for any chunking', () => {
  const noHeader = '37 %, 865 MiB\n41 %, 821 MiB\n';
  const bare = monitor.parseNvidiaSmiCsv(noHeader, { source: 'q' });
  assert.equal(bare.records.length, 0);
  assert.match(bare.errors[0].reason, /data line before any header/);
  const withFields = monitor.parseNvidiaSmiCsv(noHeader, { fields: ['utilization.gpu', 'memory.used'] });
  assert.deepEqual(withFields.records.map((x) => x.values['memory.used']), [865, 821]);

  const text = fs.readFileSync(fixture('rtx2070-repeated-header.csv'), 'utf8');
  const whole = monitor.parseNvidiaSmiCsv(text).records;
  const s = new monitor.NvidiaSmiCsvStream();
  const chunked: monitor.NvidiaSmiRecord[] = [];
  for (let i = 0; i < text.length; i += 37) chunked.push(...s.push(text.slice(i, i + 37)));
  chunked.push(...s.end());
  assert.deepEqual(chunked, whole);
  // A line still being written is not parsed until it is complete.
  const s2 = new monitor.NvidiaSmiCsvStream();
  assert.equal(s2.push('timestamp, utilization.gpu [%]\n2024/10/30 18:42:33.189, 4').length, 0);
  assert.equal(s2.push('2 %\n')[0].values['utilization.gpu'], 42);
});

test('parseNvidiaSmiTimestamp reads local time and rejects other text', () => {
  assert.equal(monitor.parseNvidiaSmiTimestamp('2024/10/30 18:42:33.5'), new Date(2024, 9, 30, 18, 42, 33, 500).getTime());
  assert.equal(monitor.parseNvidiaSmiTimestamp('2024-10-30T18:42:33'), null);
});
