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

/** The image side and class count the spec promises: input [-1, H, W], output [-1, C]. */
export function shapes(spec) {
  const [, height, width] = spec.input.shape;
  const [, classes] = spec.output.shape;
  if (classes !== spec.labels.length) {
    throw new Error(`spec.json: output has ${classes} classes but ${spec.labels.length} labels`);
  }
  return { height, width, classes };
}

/**
 * values: Float32Array of N * H * W raw values (0..16) -> Float32Array of N * C probabilities.
 * The tensors are named by the spec's input and output names (the SavedModel signature keys).
 */
export async function predict(tf, model, spec, values) {
  const { height, width, classes } = shapes(spec);
  const n = values.length / (height * width);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`expected a multiple of ${height}x${width} values, got ${values.length}`);
  }
  const output = tf.tidy(() => {
    const image = tf.tensor3d(values, [n, height, width], spec.input.dtype);
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
