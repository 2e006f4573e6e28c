// An app parameterised by top-level arguments and an ext var.
local lib = import 'lib/app.libsonnet';

function(name, replicas=1, image='nginx:1.27.3')
  {
    deployment: lib.deployment(name, replicas, image) + {
      metadata+: { annotations: { 'example.com/env': std.extVar('env') } },
    },
    service: lib.service(name),
  }
