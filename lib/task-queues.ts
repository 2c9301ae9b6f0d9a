/** Task queue for orchestration and light I/O activities. */
export const ORCHESTRATION_QUEUE = 'keel';
/** Task queue for CPU-heavy activities (training, cross-validation). */
export const TRAINING_QUEUE = 'keel-training';

export const TASK_QUEUES = [ORCHESTRATION_QUEUE, TRAINING_QUEUE] as const;
export type TaskQueueName = (typeof TASK_QUEUES)[number];
