// A phone's photo shrunk before upload: a 12-megapixel JPEG is 4–8 MB, too slow on a weak
// network; the check reads a form at about 2,000 px on the long side.
export const LONG_SIDE = 2000;

export async function shrink(file, longSide = LONG_SIDE) {
  let image;
  try {
    image = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return file; // a format the browser cannot draw (HEIC on some phones): the server reads it
  }
  const scale = Math.min(1, longSide / Math.max(image.width, image.height));
  const width = Math.round(image.width * scale);
  const height = Math.round(image.height * scale);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(image, 0, 0, width, height);
  image.close?.();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
  return blob && blob.size < file.size ? blob : file;
}
