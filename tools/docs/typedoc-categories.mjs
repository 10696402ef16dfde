// TypeDoc plugin: files each export of the API reference under its concern (Layers, Ops, Augment, ...), taken from
// the folder of src/ that defines it, so the reference reads by concern rather than as one alphabetical list and a
// new export needs no tag. An explicit `@category` tag in a comment wins.
import { relative } from 'node:path';
import { Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

/** The concern of a file of src/, by its path relative to src/. */
export function categoryOf(file) {
  if (/^backend\/(node|wasm-threads)\.ts$/.test(file) || /^data\/[\w-]+-node\.ts$/.test(file)) return 'Node';
  const folder = file.split('/')[0];
  return (
    {
      layers: 'Layers',
      ops: 'Ops',
      augment: 'Augment',
      init: 'Init',
      train: 'Train',
      models: 'Models',
      data: 'Data',
      backend: 'Backend',
      io: 'IO',
    }[folder] ?? undefined
  );
}

function hasCategory(reflection) {
  const comments = [reflection.comment, ...(reflection.signatures ?? []).map((s) => s.comment)];
  return comments.some((c) => c?.blockTags.some((t) => t.tag === '@category'));
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(
    Converter.EVENT_RESOLVE_END,
    (context) => {
      const root = `${app.options.getValue('basePath') || process.cwd()}/src`;
      for (const reflection of context.project.getReflectionsByKind(ReflectionKind.All)) {
        if (reflection.parent?.kind !== ReflectionKind.Module) continue;
        const target = reflection.isReference?.() ? reflection.getTargetReflectionDeep() : reflection;
        const file = target.sources?.[0]?.fullFileName;
        if (!file || hasCategory(reflection)) continue;
        const category = categoryOf(relative(root, file));
        if (!category) continue;
        const tag = new CommentTag('@category', [{ kind: 'text', text: category }]);
        if (reflection.isReference?.()) {
          // The /node entry's re-export of an item of the main entry: filed where the item is.
          reflection.comment ??= new Comment();
          reflection.comment.blockTags.push(tag);
          continue;
        }
        // Where the item's documentation is: a function's on its signature, else on the item itself. An item with
        // none stays as it is, so that the validation reports it undocumented.
        const holder = reflection.comment ? reflection : reflection.signatures?.find((s) => s.comment);
        holder?.comment?.blockTags.push(tag);
      }
    },
    // Before TypeDoc's CategoryPlugin (-200) sorts the items into categories.
    0,
  );
}
