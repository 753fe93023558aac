// berthctl set image: change container images of a Deployment or ReplicaSet's pod template
// (kubectl set image). `name=image` per container, `*=image` for all; an unknown container
// name is an error naming the ones there are. A guarded update, retried on a conflict.
import type { Command } from 'commander';
import { ApiError, ApiErrorCode } from '../../../pkg/api/errors.js';
import { kindArg } from '../object-args.js';
import { qualifiedSingular } from '../../../pkg/api/kinds.js';
import type { CtlContext, CtlIO } from '../context.js';
import { CtlError, UsageError } from '../errors.js';
import { action, examples } from './run.js';

const WITH_TEMPLATE = new Set(['Deployment', 'ReplicaSet']);
const ATTEMPTS = 5;

interface ContainerView {
  name: string;
  image?: string;
}

/** Parse `name=image` pairs; `*` means every container. */
export function parseImageArgs(pairs: string[]): Map<string, string> {
  if (pairs.length === 0) throw new UsageError('give at least one container=image, e.g. web=nginx:1.25');
  const out = new Map<string, string>();
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0 || eq === p.length - 1) throw new UsageError(`"${p}" is not container=image`);
    out.set(p.slice(0, eq), p.slice(eq + 1));
  }
  return out;
}

/** The template's containers with the new images; throws on a container that is not there. */
export function withImages(
  containers: ContainerView[],
  images: Map<string, string>,
  what: string,
): ContainerView[] {
  const names = containers.map((c) => c.name);
  for (const name of images.keys()) {
    if (name !== '*' && !names.includes(name))
      throw new CtlError(`${what} has no container "${name}" (it has ${names.join(', ')})`);
  }
  return containers.map((c) => {
    const image = images.get(c.name) ?? images.get('*');
    return image ? { ...c, image } : c;
  });
}

async function setImage(ctx: CtlContext, target: string, pairs: string[]) {
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1)
    throw new UsageError(`"${target}" is not kind/name, e.g. deploy/web`);
  const kind = kindArg(target.slice(0, slash));
  const name = target.slice(slash + 1);
  if (!WITH_TEMPLATE.has(kind.kind))
    throw new UsageError(
      `${kind.resource} have no pod template to set images in (deployments and replicasets do)`,
    );
  const images = parseImageArgs(pairs);
  const what = `${qualifiedSingular(kind)}/${name}`;
  for (let attempt = 1; ; attempt++) {
    const obj = await ctx.api.get(kind.resource, ctx.namespace, name);
    const spec = obj.spec as unknown as { template: { spec: { containers: ContainerView[] } } };
    const containers = withImages(spec.template.spec.containers, images, what);
    if (JSON.stringify(containers) === JSON.stringify(spec.template.spec.containers)) break;
    try {
      await ctx.api.update({
        ...obj,
        spec: {
          ...spec,
          template: { ...spec.template, spec: { ...spec.template.spec, containers } },
        } as unknown as typeof obj.spec,
      });
      break;
    } catch (err) {
      const retry =
        err instanceof ApiError &&
        (err.code === ApiErrorCode.Conflict || err.code === ApiErrorCode.Unavailable);
      if (!retry || attempt >= ATTEMPTS) throw err;
    }
  }
  ctx.println(`${what} image updated`);
}

export function addSetCommand(program: Command, io: CtlIO): void {
  const set = program
    .command('set')
    .description('Change fields of objects (set image)')
    .addHelpText('after', examples('berthctl set image deploy/web httpd=berth/busybox:v2 -n demo'));
  set
    .command('image')
    .description("Change the container images of a Deployment's or ReplicaSet's pod template")
    .argument('<kind/name>', 'e.g. deploy/web')
    .argument('<container=image...>', 'new images by container name; *=image for every container')
    .addHelpText(
      'after',
      examples(
        'berthctl set image deploy/web httpd=berth/busybox:v2 -n demo',
        'berthctl set image deploy/web *=nginx:1.25',
      ),
    )
    .action(
      action(io, (ctx, _flags: object, target: string, pairs: string[]) => setImage(ctx, target, pairs)),
    );
}
