// berthctl set image, its pure parts: `name=image` pairs and `*=image`, and a container
// that is not in the template named with the ones there are.
import test from 'ava';
import { parseImageArgs, withImages } from '../../cmd/ctl/commands/set.js';

const containers = [
  { name: 'web', image: 'a:1' },
  { name: 'sidecar', image: 'b:1' },
];

test('name=image changes that container; *=image every one', (t) => {
  t.deepEqual(withImages(containers, parseImageArgs(['web=a:2']), 'deploy/x'), [
    { name: 'web', image: 'a:2' },
    { name: 'sidecar', image: 'b:1' },
  ]);
  t.deepEqual(
    withImages(containers, parseImageArgs(['*=c:3', 'sidecar=b:2']), 'deploy/x').map((c) => c.image),
    ['c:3', 'b:2'],
  );
});

test('malformed pairs and unknown containers are clear errors', (t) => {
  t.throws(() => parseImageArgs([]), { message: /at least one container=image/ });
  t.throws(() => parseImageArgs(['web']), { message: /"web" is not container=image/ });
  t.throws(() => parseImageArgs(['=x']), { message: /is not container=image/ });
  t.throws(() => withImages(containers, parseImageArgs(['db=x']), 'deployment.apps/x'), {
    message: 'deployment.apps/x has no container "db" (it has web, sidecar)',
  });
});
