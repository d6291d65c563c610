// Running the converted graph model, the same way in the page and in Node.
//
// Input and output tensor names, shapes and labels come from spec.json. tfjs is passed in (the
// page has it as the global `tf` from its script tag, Node imports the package), so this file
// imports nothing and both sides share it.

/** Switch to the first backend of `order` that initializes; returns its name. */
export async function chooseBackend(tf, order) {
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch (error) {
      console.warn(`backend ${name} unavailable: ${error.message}`);
    }
  }
  throw new Error(`none of the backends ${order.join(', ')} could start`);
}

/** The shapes the spec promises: input [-1, H, W] or [-1, H, W, C], output [-1, K]. */
export function shapes(spec) {
  const item = spec.input.shape.slice(1);
  const [height, width, channels = 1] = item;
  const [, classes] = spec.output.shape;
  if (classes !== spec.labels.length) {
    throw new Error(`spec.json: output has ${classes} classes but ${spec.labels.length} labels`);
  }
  return { item, height, width, channels, itemSize: item.reduce((a, b) => a * b, 1), classes };
}

/**
 * values: Float32Array of N images (row-major, channels last) of raw values in the spec's range
 * -> Float32Array of N * K probabilities. The tensors are named by the spec's input and output
 * names (the SavedModel signature keys). Callers check values with contract.js first.
 */
export async function predict(tf, model, spec, values) {
  const { item, itemSize, classes } = shapes(spec);
  const n = values.length / itemSize;
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`expected a multiple of ${item.join('x')} values, got ${values.length}`);
  }
  const output = tf.tidy(() => {
    const image = tf.tensor(values, [n, ...item], spec.input.dtype);
    const result = model.execute({ [spec.input.name]: image }, spec.output.name);
    return Array.isArray(result) ? result[0] : result;
  });
  try {
    const probabilities = await output.data();
    if (probabilities.length !== n * classes) {
      throw new Error(`model returned ${probabilities.length} values, expected ${n} x ${classes}`);
    }
    return probabilities;
  } finally {
    output.dispose();
  }
}

/** The `k` most probable labels of one row of probabilities: [{label, probability}], best first. */
export function topK(probabilities, labels, k) {
  return Array.from(probabilities, (probability, index) => ({ label: labels[index], probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}
