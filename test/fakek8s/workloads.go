package fakek8s

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodSpec runs one container per image, named c0, c1, …
func PodSpec(images ...string) corev1.PodSpec {
	var spec corev1.PodSpec
	for i, img := range images {
		spec.Containers = append(spec.Containers, corev1.Container{Name: "c" + string(rune('0'+i)), Image: img})
	}
	return spec
}

func meta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), ResourceVersion: "1",
		Labels:      map[string]string{"app": name},
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}}
}

func template(name string, spec corev1.PodSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec}
}

// Deployment runs the images.
func Deployment(ns, name string, images ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: meta(ns, name), Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: template(name, PodSpec(images...))}}
}

// StatefulSet runs the images.
func StatefulSet(ns, name string, images ...string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: meta(ns, name), Spec: appsv1.StatefulSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: template(name, PodSpec(images...))}}
}

// DaemonSet runs the images.
func DaemonSet(ns, name string, images ...string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: meta(ns, name), Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: template(name, PodSpec(images...))}}
}

// Job runs the images once.
func Job(ns, name string, images ...string) *batchv1.Job {
	spec := PodSpec(images...)
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{ObjectMeta: meta(ns, name), Spec: batchv1.JobSpec{Template: template(name, spec)}}
}

// CronJob runs the images hourly.
func CronJob(ns, name string, images ...string) *batchv1.CronJob {
	spec := PodSpec(images...)
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.CronJob{ObjectMeta: meta(ns, name), Spec: batchv1.CronJobSpec{Schedule: "0 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(name, spec)}}}}
}

// Pod is a bare pod running the images.
func Pod(ns, name string, images ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: meta(ns, name), Spec: PodSpec(images...)}
}

// OwnedBy marks an object's controller, as a ReplicaSet owns its pods and a
// CronJob its jobs.
func OwnedBy(m *metav1.ObjectMeta, kind, name string) {
	yes := true
	m.OwnerReferences = append(m.OwnerReferences, metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &yes})
}
