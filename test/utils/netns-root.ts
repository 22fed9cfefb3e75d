/** The root namespace's links and rules, before and after a run (src/netns/root-state.ts). */
export { type RootState, rootState } from '../../src/netns/index.ts'
