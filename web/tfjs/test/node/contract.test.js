// page/contract.js against the cases Python wrote with core.contract.check_batch: the same values
// (float32, bit for bit) for good batches, an error naming the same problem for bad ones.
// tests/unit/test_contract_vectors.py runs core.contract on the same cases.
import assert from 'node:assert/strict';
import test from 'node:test';

import { ContractError, checkBatch, formatG } from '../../page/contract.js';
import { readFixture } from './load.js';

const { specs, cases } = readFixture('contract.json');
const SPECIAL = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
const decode = (value) => {
  if (Array.isArray(value)) return value.map(decode);
  if (value !== null && typeof value === 'object') return { shape: value.shape, values: decode(value.values) };
  return SPECIAL[value] ?? value;
};
const options = ({ max_batch: maxBatch, check_range: checkRange }) => ({
  ...(maxBatch !== undefined && { maxBatch }), ...(checkRange !== undefined && { checkRange }),
});

test('there are good and bad cases', () => {
  assert.ok(cases.filter((c) => c.expected).length >= 4 && cases.filter((c) => c.error).length >= 12);
});

for (const item of cases) {
  test(`contract: ${item.name}`, () => {
    const spec = specs[item.spec];
    const run = () => checkBatch(decode(item.batch), spec, options(item.options));
    if (item.error) {
      assert.throws(run, (error) => error instanceof ContractError && error.message.includes(item.error),
        `expected an error containing "${item.error}"`);
      return;
    }
    const { values, shape } = run();
    assert.deepEqual(shape, item.shape);
    assert.deepEqual(Array.from(values), item.expected);
  });
}

test('flat {shape, values} batches are checked the same way', () => {
  const spec = specs['grey-2x2'];
  assert.deepEqual(Array.from(checkBatch({ shape: [1, 2, 2], values: [0, 0.5, 1, -1] }, spec).values), [0, 0.5, 1, -1]);
  assert.throws(() => checkBatch({ shape: [0, 2, 2], values: [] }, spec), /input: empty batch: send at least one 2x2 image/);
  assert.throws(() => checkBatch({ shape: [1, 2, 2], values: new Float32Array(3) }, spec), /ragged: 3 values for shape \[1, 2, 2\]/);
  assert.throws(() => checkBatch({ shape: [1, 4], values: new Float32Array(4) }, spec, { source: 'the picture' }),
    /^Error: the picture: must have shape \[-1, 2, 2\]|the picture: must have shape \[-1, 2, 2\] \(N images of 2x2\), got \[1, 4\]/);
});

test('numbers are written as Python writes them with :g', () => {
  const cases_ = [[0, '0'], [16, '16'], [255, '255'], [-1, '-1'], [0.5, '0.5'], [1e-5, '1e-05'], [123456789, '1.23457e+08'],
    [1 / 3, '0.333333'], [-3.5, '-3.5'], [1e39, '1e+39'], [0.0001, '0.0001'], [100000, '100000'], [1e6, '1e+06']];
  for (const [value, text] of cases_) assert.equal(formatG(value), text, `${value}`);
});
