// The backup flow of tests/interop/README.md on node-soap, a JavaScript SOAP stack that knows
// the vSphere API only from the WSDL the endpoint serves (/sdk/vimService.wsdl).
//
//   node backup_flow.js http://127.0.0.1:8989 [user] [password] [vm]
//
// node-soap decodes every element by the schema, except values in an anyType position
// (DynamicProperty.val, TaskInfo.result): there it hands over the element as written, with
// its xsi:type attribute. This client decodes those the way a typed client does: by the
// xsi:type, checked against the type the schema declares for the property path (a subtype
// is fine; xsd:int where xsd:long is declared, or xsd:string where an enum is, is not), and
// an xsd:int outside the 32-bit range is refused, as every typed decoder refuses it.
//
// HTTP goes through Node's keep-alive agent (the default since Node 19), one socket at a
// time, so every request reuses the previous connection unless the server said it closes
// it; the keepalive_reuse case checks that contract on a raw socket.
//
// Prints one JSON object {client, cases: [{name, ok, detail}]}; exit status 0 when every
// case passed.
'use strict';

const http = require('http');
const net = require('net');
const soap = require('soap');
const axios = require('axios');

const [base, user = 'user', password = 'pass', vmName = 'win2003-sql'] = process.argv.slice(2);
const CASES = ['connect', 'list_vms', 'host_hardware', 'cbt_enable', 'quiesced_snapshot', 'disk_chain',
  'download_disk', 'remove_snapshot', 'cbt_reset', 'keepalive_reuse', 'logout'];
const BLOCKING = new Set(['connect', 'list_vms', 'quiesced_snapshot']);

// the properties of the managed objects read here (managed objects are not in the schema)
const MO_PROPS = {
  VirtualMachine: {name: 'xsd:string', runtime: 'VirtualMachineRuntimeInfo', summary: 'VirtualMachineSummary',
    config: 'VirtualMachineConfigInfo', snapshot: 'VirtualMachineSnapshotInfo', layoutEx: 'VirtualMachineFileLayoutEx'},
  VirtualMachineSnapshot: {config: 'VirtualMachineConfigInfo'},
  HostSystem: {name: 'xsd:string', hardware: 'HostHardwareInfo', summary: 'HostListSummary'},
  Datastore: {name: 'xsd:string', summary: 'DatastoreSummary'},
  Task: {info: 'TaskInfo'},
};
const INT32 = [-(2 ** 31), 2 ** 31 - 1];
const local = (q) => (q || '').replace(/^[A-Za-z0-9]+:/, '');

const agent = new http.Agent({keepAlive: true, maxSockets: 1});
const request = axios.create({httpAgent: agent});

class Flow {
  constructor() {
    this.url = new URL(base);
  }

  // --- the schema, as node-soap parsed it ---------------------------------------------------
  schemaType(name) {
    return this.schema.complexTypes[name] || this.schema.types[name];
  }

  // [element name -> {type, array}] of a complex type, its bases' elements first
  elements(name) {
    const out = {};
    const walk = (node) => {
      for (const c of node.children || []) {
        if (c.name === 'extension') {
          const baseType = this.schemaType(local(c.$base));
          if (baseType) walk(baseType);
        }
        if (c.name === 'element') out[c.$name] = {type: c.$type, array: c.$maxOccurs === 'unbounded'};
        else walk(c);
      }
    };
    const t = this.schemaType(name);
    if (t) walk(t);
    return out;
  }

  baseOf(name) {
    let found = null;
    const walk = (node) => (node.children || []).forEach((c) => {
      if (c.name === 'extension') found = local(c.$base);
      else walk(c);
    });
    const t = this.schema.complexTypes[name];
    if (t) walk(t);
    return found;
  }

  isA(name, ancestor) {
    for (let t = name; t; t = this.baseOf(t)) if (t === ancestor) return true;
    return false;
  }

  // the declared type of a property path of a managed object: "xsd:long", "VirtualDevice[]"
  declared(moType, path) {
    const [first, ...rest] = path.split('.');
    let type = MO_PROPS[moType] && MO_PROPS[moType][first];
    if (!type) throw new Error(`no declared type known for ${moType}.${first}`);
    let array = false;
    for (const name of rest) {
      const el = this.elements(local(type))[name];
      if (!el) throw new Error(`${local(type)} has no property ${name} (path ${path})`);
      type = el.type;
      array = el.array;
    }
    return (type.startsWith('xsd:') ? type : local(type)) + (array ? '[]' : '');
  }

  // a value in an anyType position: checked against the declared type, then decoded
  typed(val, declared, where) {
    const xsi = val && val.attributes && val.attributes['xsi:type'];
    if (!xsi) throw new Error(`${where}: no xsi:type on an anyType value`);
    const want = declared.endsWith('[]')
      ? 'ArrayOf' + (declared.startsWith('xsd:') ? declared.slice(4, 5).toUpperCase() + declared.slice(5, -2) : declared.slice(0, -2))
      : declared;
    const ok = xsi === want || (!xsi.startsWith('xsd:') && !want.startsWith('xsd:') && this.isA(local(xsi), want));
    if (!ok) throw new Error(`${where}: xsi:type ${xsi}, the schema declares ${want}`);
    if (xsi === 'xsd:int' || xsi === 'xsd:short' || xsi === 'xsd:byte') {
      const n = Number(val.$value);
      if (!Number.isInteger(n) || n < INT32[0] || n > INT32[1]) throw new Error(`${where}: ${val.$value} is not an xsd:int`);
      return n;
    }
    if (xsi === 'xsd:long') return BigInt(val.$value);
    if (xsi === 'xsd:boolean') return val.$value === true || val.$value === 'true';
    if (xsi === 'ManagedObjectReference') return val; // {attributes: {type}, $value: id}
    if ('$value' in val && Object.keys(val).length === 2) return val.$value;
    return val;
  }

  // --- calls -------------------------------------------------------------------------------
  ref(type, value) {
    return {attributes: {type}, $value: value};
  }

  async call(method, args) {
    const [result] = await this.client[method + 'Async'](args);
    return result ? result.returnval : undefined;
  }

  async props(obj, paths) {
    const moType = obj.attributes.type;
    const res = await this.call('RetrievePropertiesEx', {
      _this: this.content.propertyCollector,
      specSet: [{propSet: [{type: moType, all: false, pathSet: paths}], objectSet: [{obj, skip: false}]}],
      options: {},
    });
    const out = {};
    for (const oc of (res && res.objects) || []) {
      for (const p of oc.propSet || []) out[p.name] = this.typed(p.val, this.declared(moType, p.name), `${moType}.${p.name}`);
    }
    return out;
  }

  async objects(moType, paths) {
    const view = await this.call('CreateContainerView', {
      _this: this.content.viewManager, container: this.content.rootFolder, type: [moType], recursive: true});
    try {
      const res = await this.call('RetrievePropertiesEx', {
        _this: this.content.propertyCollector,
        specSet: [{propSet: [{type: moType, all: false, pathSet: paths}],
          objectSet: [{obj: view, skip: true, selectSet: [{attributes: {'xsi:type': 'TraversalSpec'},
            name: 'view', type: 'ContainerView', path: 'view', skip: false}]}]}],
        options: {},
      });
      return ((res && res.objects) || []).map((oc) => {
        const p = {};
        for (const dp of oc.propSet || []) p[dp.name] = this.typed(dp.val, this.declared(moType, dp.name), `${moType}.${dp.name}`);
        return [oc.obj, p];
      });
    } finally {
      await this.call('DestroyView', {_this: view});
    }
  }

  async wait(task) {
    for (let i = 0; i < 2400; i++) {
      const {info} = await this.props(task, ['info']);
      if (info.state === 'success') return info;
      if (info.state === 'error') {
        const f = info.error.fault;
        throw new Error(`task ${task.$value} failed: ${f.attributes['xsi:type']} ${info.error.localizedMessage || ''}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`task ${task.$value} did not finish`);
  }

  async disks(obj) {
    const devices = (await this.props(obj, ['config.hardware.device']))['config.hardware.device'];
    const out = [];
    for (const dev of [].concat(devices.VirtualDevice || [])) {
      if (!this.isA(dev.attributes['xsi:type'], 'VirtualDisk')) continue;
      const chain = [];
      for (let b = dev.backing; b; b = b.parent) chain.push({fileName: b.fileName, changeId: b.changeId});
      out.push(chain);
    }
    return out;
  }

  async reconfigure(spec) {
    await this.wait(await this.call('ReconfigVM_Task', {_this: this.vm, spec}));
    return (await this.props(this.vm, ['config.changeTrackingEnabled']))['config.changeTrackingEnabled'];
  }

  // --- the cases ------------------------------------------------------------------------------
  async connect() {
    this.client = await soap.createClientAsync(`${base}/sdk/vimService.wsdl`, {request, endpoint: `${base}/sdk`});
    this.schema = this.client.wsdl.definitions.schemas['urn:vim25'];
    this.content = await this.call('RetrieveServiceContent', {_this: this.ref('ServiceInstance', 'ServiceInstance')});
    await this.call('Login', {_this: this.content.sessionManager, userName: user, password});
    this.cookie = this.client.lastResponseHeaders['set-cookie'][0].split(';')[0];
    this.client.addHttpHeader('Cookie', this.cookie);
    return `${this.content.about.fullName} (API ${this.content.about.apiVersion})`;
  }

  async list_vms() {
    const vms = await this.objects('VirtualMachine', ['name', 'runtime.powerState', 'config.hardware.numCPU',
      'config.hardware.memoryMB', 'summary.storage.committed']);
    if (!vms.length) throw new Error('no VirtualMachine in the inventory');
    for (const [obj, p] of vms) {
      if (!['poweredOn', 'poweredOff', 'suspended'].includes(p['runtime.powerState'])) throw new Error(JSON.stringify(p));
      if (p.name === vmName) this.vm = obj;
    }
    if (!this.vm) throw new Error(`no VM named ${vmName}`);
    return vms.map(([, p]) => `${p.name} (${p['summary.storage.committed']} bytes)`).sort().join(', ');
  }

  async host_hardware() {
    const paths = ['hardware.cpuInfo.numCpuCores', 'hardware.memorySize', 'hardware.systemInfo.uuid', 'summary.hardware.cpuModel'];
    const hosts = await this.objects('HostSystem', ['name', ...paths]);
    if (!hosts.length) throw new Error('no HostSystem in the inventory');
    const dss = await this.objects('Datastore', ['name', 'summary.capacity', 'summary.freeSpace']);
    for (const [, p] of hosts) {
      const missing = paths.filter((k) => p[k] === undefined);
      if (missing.length) throw new Error(`host ${p.name}: ${missing.join(', ')} unset`);
    }
    return hosts.map(([, p]) => `${p.name}: ${p['summary.hardware.cpuModel']}, ${p['hardware.memorySize']} bytes`)
      .concat(dss.map(([, p]) => `${p.name}: ${p['summary.capacity']} bytes`)).join('; ');
  }

  async cbt_enable() {
    let on = (await this.props(this.vm, ['config.changeTrackingEnabled']))['config.changeTrackingEnabled'];
    if (!on) on = await this.reconfigure({changeTrackingEnabled: true});
    if (on !== true) throw new Error(`config.changeTrackingEnabled is ${on} after ReconfigVM_Task`);
    return 'on';
  }

  async quiesced_snapshot() {
    this.baseDisks = (await this.disks(this.vm)).map((c) => c[0].fileName);
    const info = await this.wait(await this.call('CreateSnapshot_Task',
      {_this: this.vm, name: 'node-backup', description: '', memory: false, quiesce: true}));
    const result = this.typed(info.result, 'ManagedObjectReference', 'TaskInfo.result');
    if (result.attributes.type !== 'VirtualMachineSnapshot') throw new Error(`result ${JSON.stringify(result)}`);
    this.snapshot = result;
    const {snapshot} = await this.props(this.vm, ['snapshot']);
    const node = [].concat(snapshot.rootSnapshotList).find((n) => n.snapshot.$value === result.$value);
    if (!node || node.quiesced !== true) throw new Error(`snapshot tree ${JSON.stringify(snapshot)}`);
    return `${result.$value} quiesced`;
  }

  async disk_chain() {
    const live = await this.disks(this.vm);
    const frozen = await this.disks(this.snapshot);
    if (live.length !== this.baseDisks.length) throw new Error(`${live.length} disks, ${this.baseDisks.length} before`);
    live.forEach((chain, i) => {
      const b = this.baseDisks[i];
      if (chain[0].fileName !== b.replace(/\.vmdk$/, '-000001.vmdk') || !chain[1] || chain[1].fileName !== b) {
        throw new Error(`chain ${JSON.stringify(chain)} for ${b}`);
      }
      if (!chain[0].changeId) throw new Error(`the writable link has no changeId: ${JSON.stringify(chain)}`);
    });
    if (frozen.map((c) => c[0].fileName).join() !== this.baseDisks.join()) throw new Error(`snapshot disks ${JSON.stringify(frozen)}`);
    if (!frozen.every((c) => c[0].changeId)) throw new Error(`a snapshot disk without a changeId: ${JSON.stringify(frozen)}`);
    return live.map((c) => c.map((l) => `${l.fileName} (${l.changeId || '-'})`).join(' < ')).join('; ');
  }

  async download_disk() {
    const [, ds, path] = /^\[(.+?)\] (.+)$/.exec(this.baseDisks[0]);
    const params = {dcPath: 'ha-datacenter', dsName: ds};
    const headers = {Cookie: this.cookie};
    const desc = await request.get(`${base}/folder/${path}`, {params, headers, responseType: 'text'});
    const extent = /^(?:RW|RDONLY) \d+ \S+ "([^"]+)"/m.exec(desc.data)[1];
    const folder = path.replace(/\/[^/]*$/, '');
    const part = await request.get(`${base}/folder/${folder}/${extent}`, {params, responseType: 'arraybuffer',
      headers: {...headers, Range: 'bytes=0-65535'}});
    const bytes = Buffer.from(part.data);
    if (part.status !== 206 || bytes.length !== 65536) throw new Error(`extent: HTTP ${part.status}, ${bytes.length} bytes`);
    if (bytes[510] !== 0x55 || bytes[511] !== 0xaa) throw new Error("the extent's first sector is no MBR");
    return `${path} (${desc.data.length} bytes) and 64 KiB of ${extent}`;
  }

  async remove_snapshot() {
    await this.wait(await this.call('RemoveSnapshot_Task', {_this: this.snapshot, removeChildren: false, consolidate: true}));
    const chains = await this.disks(this.vm);
    if (chains.map((c) => c[0].fileName).join() !== this.baseDisks.join()) throw new Error(`chains ${JSON.stringify(chains)}`);
    if ((await this.props(this.vm, ['snapshot'])).snapshot !== undefined) throw new Error('a snapshot is left');
    return 'consolidated';
  }

  async cbt_reset() {
    await this.reconfigure({changeTrackingEnabled: false});
    const on = await this.reconfigure({changeTrackingEnabled: true});
    if (on !== true) throw new Error(`config.changeTrackingEnabled is ${on} after off then on`);
    return 'off, on';
  }

  // An upload the host refuses from its headers (no session), then the next call on the
  // same connection unless the answer said "Connection: close": a server that closes a
  // connection it did not announce closing breaks every keep-alive client's next request.
  async keepalive_reuse() {
    const sock = net.connect(Number(this.url.port), this.url.hostname);
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const reader = rawReader(sock);
    const body = Buffer.alloc(256 * 1024, 0x41);
    sock.write(`PUT /folder/interop.bin?dcPath=ha-datacenter&dsName=datastore1 HTTP/1.1\r\nHost: ${this.url.host}\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`);
    sock.write(body.subarray(0, 1024));
    const first = await reader.next();
    const closes = (first.headers.connection || '').toLowerCase() === 'close';
    if (closes) {
      sock.destroy();
      return `HTTP ${first.status}, Connection: close announced`;
    }
    const soapBody = '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">' +
      '<soapenv:Body><RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this>' +
      '</RetrieveServiceContent></soapenv:Body></soapenv:Envelope>';
    // the rest of the refused upload first (the connection is still the client's to use)
    sock.write(body.subarray(1024));
    sock.write(`POST /sdk HTTP/1.1\r\nHost: ${this.url.host}\r\nContent-Type: text/xml\r\nSOAPAction: urn:vim25/7.0.3.0\r\n` +
      `Content-Length: ${Buffer.byteLength(soapBody)}\r\n\r\n${soapBody}`);
    let second;
    try {
      second = await reader.next();
    } catch (e) {
      throw new Error(`HTTP ${first.status} without "Connection: close", then the connection was closed: ${e.message}`);
    } finally {
      sock.destroy();
    }
    if (second.status !== 200) throw new Error(`the reused connection answered HTTP ${second.status}`);
    return `HTTP ${first.status}, connection kept and reused (HTTP ${second.status})`;
  }

  async logout() {
    await this.call('Logout', {_this: this.content.sessionManager});
    agent.destroy();
    return 'logged out';
  }
}

// responses read one after another from a raw socket (Content-Length bodies only)
function rawReader(sock) {
  let buf = Buffer.alloc(0);
  let waiting = null;
  let ended = null;
  const poke = () => { if (waiting) { const w = waiting; waiting = null; w(); } };
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); poke(); });
  sock.on('close', () => { ended = ended || new Error('connection closed by the server'); poke(); });
  sock.on('error', (e) => { ended = e; poke(); });
  return {
    async next() {
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end >= 0) {
          const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
          const headers = {};
          for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
          const len = Number(headers['content-length'] || 0);
          if (buf.length >= end + 4 + len) {
            const body = buf.subarray(end + 4, end + 4 + len);
            buf = buf.subarray(end + 4 + len);
            return {status: Number(lines[0].split(' ')[1]), headers, body};
          }
        }
        if (ended) throw ended;
        await new Promise((r) => { waiting = r; });
      }
    },
  };
}

(async () => {
  const flow = new Flow();
  const cases = [];
  let broken = null;
  for (const name of CASES) {
    if (broken && name !== 'logout' && name !== 'keepalive_reuse') {
      cases.push({name, ok: false, detail: `not reached (${broken} failed)`});
      continue;
    }
    try {
      cases.push({name, ok: true, detail: await flow[name]()});
    } catch (e) {
      const detail = e.response ? `HTTP ${e.response.status}: ${String(e.response.data).slice(0, 1500)}` : `${e.name}: ${e.message}`;
      cases.push({name, ok: false, detail: detail.slice(0, 2000)});
      if (BLOCKING.has(name)) broken = name;
    }
  }
  agent.destroy();
  process.stdout.write(JSON.stringify({client: `node-soap ${require('soap/package.json').version} (Node ${process.version})`, cases}, null, 1) + '\n');
  process.exit(cases.every((c) => c.ok) ? 0 : 1);
})();
