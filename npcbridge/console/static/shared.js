// What the views share: the server's overview, the NPCs this page defined on its connection,
// and the latest metrics snapshots.
export const shared = {
  overview: null,
  defined: new Map(), // npc key on this connection -> the persona sent in npc.define
  samples: [],
};
