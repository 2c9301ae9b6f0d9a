/**
 * The analysis of one rollout step: reads the step's window of logged predictions (and feedback)
 * split by variant, runs the guardrail checks (lib/rollout/analyse-step.ts) and stores the
 * analysis in `rollout_analyses` (a retry keeps the first).
 */
import { analyseStep } from '../lib/rollout/analyse-step.js';
import type { StepAnalysis } from '../lib/schemas/rollout-messages.js';
import type { Guardrails, RolloutStep } from '../lib/schemas/rollout.js';
import type { Db } from '../stores/db.js';
import type { RolloutRun } from '../stores/rollouts.js';
import { readLiveWindow, readShadowPairs, recordAnalysis } from '../stores/rollouts.js';

export interface AnalyseStepRequest extends RolloutRun {
  model: string;
  control: number;
  candidate: number;
  stepIndex: number;
  stage: string;
  look: number;
  step: Pick<RolloutStep, 'mode' | 'minSamples'>;
  guardrails: Guardrails;
  /** The window: from the moment every gateway applied the step's routing to this look's end. */
  from: string;
  /** End times of the step's looks so far (ISO), this one last. */
  lookEnds: string[];
}

export function createRolloutAnalysisActivities({ db }: { db: Db }) {
  return {
    async analyseRolloutStep(request: AnalyseStepRequest): Promise<StepAnalysis> {
      const to = request.lookEnds[request.lookEnds.length - 1]!;
      const window = { model: request.model, control: request.control, candidate: request.candidate, from: request.from, to };
      const shadow = request.step.mode === 'shadow';
      const { verdict, checks } = analyseStep({
        step: request.step,
        guardrails: request.guardrails,
        live: shadow ? [] : await readLiveWindow(db, window),
        shadow: shadow ? await readShadowPairs(db, window) : [],
        lookEndsMs: request.lookEnds.map((t) => Date.parse(t)),
      });
      const analysis: StepAnalysis = { stepIndex: request.stepIndex, stage: request.stage, look: request.look, verdict, checks, window: { from: request.from, to } };
      await recordAnalysis(db, { ...analysis, workflowId: request.workflowId, runId: request.runId });
      return analysis;
    },
  };
}

export type RolloutAnalysisActivities = ReturnType<typeof createRolloutAnalysisActivities>;
