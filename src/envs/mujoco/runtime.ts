/**
 * The MuJoCo WebAssembly runtime (mujoco-js), wrapped in a small typed API.
 *
 * - `createMujocoRuntime()` returns a loader: a function that loads the WASM module on its first call
 *   and returns the same Promise afterwards. The memo lives in the closure the caller holds; this file
 *   keeps no module-level mutable state.
 * - Models are loaded from the package's own MJCF files (src/envs/models/), written into the WASM
 *   file system; a model that fails to load throws an Error carrying MuJoCo's own message.
 * - State is read through typed-array views over the WASM heap, cached per MjData and fetched again
 *   when they have gone empty (the heap grew, e.g. when another MjData was created: DESIGN.md §5).
 */
import { readFileSync } from 'node:fs';
import loadMujoco, { type MainModule, type MjData, type MjModel } from 'mujoco-js';

/** Directory of the package's MJCF files. */
const MODELS_DIR = new URL('../models/', import.meta.url);
/** Where model files go in the WASM file system. */
const WASM_MODELS_DIR = '/magicbox-models';

/** One simulation state of a loaded model. Methods throw after `free()`. */
export interface MujocoData {
  /** mj_resetData: the model's initial state (qpos0, zero velocities, zero controls, time 0). */
  readonly reset: () => void;
  /** Copies `values[offset .. offset + nu)` into ctrl. */
  readonly setCtrl: (values: ArrayLike<number>, offset?: number) => void;
  /** mj_step `n` times (a frame skip of n). */
  readonly step: (n: number) => void;
  /** mj_forward: recompute derived quantities after writing qpos/qvel directly. */
  readonly forward: () => void;
  /** Live views over the WASM heap (float64): valid until the heap grows; call again rather than keep them. */
  readonly qpos: () => Float64Array;
  readonly qvel: () => Float64Array;
  readonly ctrl: () => Float64Array;
  /**
   * External (contact) forces per body, nbody × 6 (com-based torque then force), as a live view. MuJoCo
   * fills it only in mj_rnePostConstraint: call `rnePostConstraint()` (after `forward()`) first.
   */
  readonly cfrcExt: () => Float64Array;
  /** mj_rnePostConstraint: computes cfrc_ext (and cacc, cfrc_int) from the current derived quantities. */
  readonly rnePostConstraint: () => void;
  /**
   * Derived quantities as live views, filled by mj_forward (and mj_step, from its last evaluation):
   * xipos, the bodies' centres of mass in world coordinates (nbody × 3); cinert, their com-based
   * inertias (nbody × 10); cvel, their com-based velocities (nbody × 6, rotation then translation);
   * qfrcActuator, the actuator forces in joint space (nv).
   */
  readonly xipos: () => Float64Array;
  readonly cinert: () => Float64Array;
  readonly cvel: () => Float64Array;
  readonly qfrcActuator: () => Float64Array;
  /**
   * mj_setConst(model, this data): recomputes the model's constants derived from its parameters at qpos0
   * (body_subtreemass, dof/body/tendon invweight0, actuator length0 and acc0, mean inertia, …), e.g.
   * after scaling masses. It uses this data as scratch space: reset it before simulating.
   */
  readonly setConst: () => void;
  /** Simulation time in seconds. */
  readonly time: () => number;
  readonly free: () => void;
}

export interface MujocoModel {
  readonly name: string;
  readonly nq: number;
  readonly nv: number;
  readonly nu: number;
  /** Number of bodies, the world body included. */
  readonly nbody: number;
  /** Physics timestep (option/timestep) in seconds. */
  readonly timestep: number;
  /** Bytes each MjData reserves: arena (`<size memory>`) plus its fixed buffer. */
  readonly bytesPerData: number;
  /** Number of geoms. */
  readonly ngeom: number;
  /**
   * Writable live views of physical parameters (float64, valid until the heap grows: call again rather
   * than keep them): body_mass (nbody), body_inertia (nbody × 3), geom_friction (ngeom × 3) and
   * dof_damping (nv). They belong to the model, so a change applies to every MjData of this model.
   */
  readonly bodyMass: () => Float64Array;
  readonly bodyInertia: () => Float64Array;
  readonly geomFriction: () => Float64Array;
  readonly dofDamping: () => Float64Array;
  /** body_subtreemass (nbody), derived from body_mass by the compiler or `MujocoData.setConst()` (a live view; read it, do not write it). */
  readonly bodySubtreeMass: () => Float64Array;
  readonly createData: () => MujocoData;
  /** Frees the model; free its data first. */
  readonly free: () => void;
}

export interface MujocoRuntime {
  readonly module: MainModule;
  /** Loads `src/envs/models/<file>` (e.g. 'half_cheetah.xml'). */
  readonly loadModel: (file: string) => MujocoModel;
  /** Loads a model from MJCF text; `name` is used in messages and as the file name in the WASM FS. */
  readonly loadModelFromXml: (name: string, xml: string) => MujocoModel;
}

/** Returns a loader: its first call loads the WASM module, later calls return the same Promise. */
export const createMujocoRuntime = (): (() => Promise<MujocoRuntime>) => {
  let pending: Promise<MujocoRuntime> | undefined;
  return () => {
    pending ??= initRuntime();
    return pending;
  };
};

/** mjXError and friends are not std::exceptions: their message is a C string at the thrown object. */
const cString = (heap: ArrayBufferLike, ptr: number): string => {
  const bytes = new Uint8Array(heap);
  let end = ptr;
  while (end < bytes.length && bytes[end] !== 0 && end - ptr < 4096) end++;
  return new TextDecoder().decode(bytes.subarray(ptr, end));
};

const initRuntime = async (): Promise<MujocoRuntime> => {
  /** MuJoCo's console output while a model loads (its parse errors are printed, not thrown). */
  let captured: string[] | undefined;
  const print = (s: string): void => {
    if (captured) captured.push(s);
    else console.log(s);
  };
  const printErr = (s: string): void => {
    if (captured) captured.push(s);
    else console.error(s);
  };
  const mujoco = await loadMujoco({ print, printErr });
  mujoco.FS.mkdir(WASM_MODELS_DIR);

  // A tiny model kept for the runtime's life: its arrays give access to the current heap buffer,
  // which the module does not export, to read the messages of C++ exceptions thrown by the parser.
  const probeXml = '<mujoco model="probe"><worldbody><body><joint type="slide"/><geom type="sphere" size=".1"/></body></worldbody></mujoco>';
  mujoco.FS.writeFile(`${WASM_MODELS_DIR}/__probe.xml`, probeXml);
  const probe = mujoco.MjModel.loadFromXML(`${WASM_MODELS_DIR}/__probe.xml`);
  if (!probe) throw new Error('mujoco-js: could not load the built-in probe model');
  const heap = (): ArrayBufferLike => (probe.body_mass as Float64Array).buffer;

  const wrapModel = (name: string, model: MjModel): MujocoModel => {
    const nq = model.nq;
    const nv = model.nv;
    const nu = model.nu;
    let modelFreed = false;
    const modelArray = (view: unknown): Float64Array => {
      if (modelFreed) throw new Error(`mujoco model ${name}: parameters read after free()`);
      return view as Float64Array;
    };

    const createData = (): MujocoData => {
      if (modelFreed) throw new Error(`mujoco model ${name}: createData() after free()`);
      const data: MjData = new mujoco.MjData(model);
      let freed = false;
      let qposView: Float64Array = data.qpos as Float64Array;
      let qvelView: Float64Array = data.qvel as Float64Array;
      let ctrlView: Float64Array = data.ctrl as Float64Array;
      let cfrcExtView: Float64Array = data.cfrc_ext as Float64Array;
      const live = (): void => {
        if (freed) throw new Error(`mujoco model ${name}: data used after free()`);
      };
      // A view over a grown (detached) heap has length 0; the model's own arrays never have length 0 here
      // except when empty by construction (nu = 0), in which case re-fetching is harmless.
      const qpos = (): Float64Array => {
        live();
        if (qposView.length === 0) qposView = data.qpos as Float64Array;
        return qposView;
      };
      const qvel = (): Float64Array => {
        live();
        if (qvelView.length === 0) qvelView = data.qvel as Float64Array;
        return qvelView;
      };
      const ctrl = (): Float64Array => {
        live();
        if (ctrlView.length === 0) ctrlView = data.ctrl as Float64Array;
        return ctrlView;
      };
      const cfrcExt = (): Float64Array => {
        live();
        if (cfrcExtView.length === 0) cfrcExtView = data.cfrc_ext as Float64Array;
        return cfrcExtView;
      };
      /** A cached view of one MjData array, fetched again when it has gone empty (as the ones above). */
      const cachedView = (fetch: () => unknown): (() => Float64Array) => {
        let view = fetch() as Float64Array;
        return () => {
          live();
          if (view.length === 0) view = fetch() as Float64Array;
          return view;
        };
      };
      const xipos = cachedView(() => data.xipos);
      const cinert = cachedView(() => data.cinert);
      const cvel = cachedView(() => data.cvel);
      const qfrcActuator = cachedView(() => data.qfrc_actuator);
      return {
        reset: () => {
          live();
          mujoco.mj_resetData(model, data);
        },
        setCtrl: (values, offset = 0) => {
          const c = ctrl();
          for (let k = 0; k < nu; k++) c[k] = values[offset + k]!;
        },
        step: (n) => {
          live();
          for (let k = 0; k < n; k++) mujoco.mj_step(model, data);
        },
        forward: () => {
          live();
          mujoco.mj_forward(model, data);
        },
        rnePostConstraint: () => {
          live();
          mujoco.mj_rnePostConstraint(model, data);
        },
        setConst: () => {
          live();
          if (modelFreed) throw new Error(`mujoco model ${name}: setConst() after free()`);
          mujoco.mj_setConst(model, data);
        },
        qpos,
        qvel,
        ctrl,
        cfrcExt,
        xipos,
        cinert,
        cvel,
        qfrcActuator,
        time: () => {
          live();
          return data.time;
        },
        free: () => {
          if (freed) return;
          freed = true;
          data.delete();
        },
      };
    };

    return {
      name,
      nq,
      nv,
      nu,
      nbody: model.nbody,
      timestep: model.opt.timestep,
      bytesPerData: Number(model.narena) + Number(model.nbuffer),
      ngeom: model.ngeom,
      bodyMass: () => modelArray(model.body_mass),
      bodyInertia: () => modelArray(model.body_inertia),
      geomFriction: () => modelArray(model.geom_friction),
      dofDamping: () => modelArray(model.dof_damping),
      bodySubtreeMass: () => modelArray(model.body_subtreemass),
      createData,
      free: () => {
        if (modelFreed) return;
        modelFreed = true;
        model.delete();
      },
    };
  };

  const loadModelFromXml = (name: string, xml: string): MujocoModel => {
    const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
    const path = `${WASM_MODELS_DIR}/${safe.endsWith('.xml') ? safe : `${safe}.xml`}`;
    mujoco.FS.writeFile(path, xml);
    const lines: string[] = [];
    captured = lines;
    let model: MjModel | null;
    try {
      model = mujoco.MjModel.loadFromXML(path);
    } catch (error) {
      const excPtr = (error as { excPtr?: unknown }).excPtr;
      const thrown =
        typeof excPtr === 'number' ? cString(heap(), excPtr).trim() : error instanceof Error ? error.message : String(error);
      lines.unshift(thrown);
      model = null;
    } finally {
      captured = undefined;
    }
    if (!model) {
      const message = lines.map((l) => l.trim()).filter((l) => l !== '').join('\n');
      throw new Error(`mujoco: model ${name} failed to load: ${message || '(MuJoCo gave no message)'}`);
    }
    return wrapModel(name, model);
  };

  return {
    module: mujoco,
    loadModel: (file) => loadModelFromXml(file, readFileSync(new URL(file, MODELS_DIR), 'utf8')),
    loadModelFromXml,
  };
};
